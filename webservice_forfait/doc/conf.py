# Sphinx configuration of the Webservice Forfait Module documentation
import configparser
import os

_cfg = configparser.ConfigParser()
_cfg.read(os.path.join(os.path.dirname(__file__), os.pardir, 'tryton.cfg'))

project = "Webservice Forfait Module"
release = version = _cfg.get('tryton', 'version', fallback='8.0.0')
master_doc = 'index'
default_role = 'ref'
highlight_language = 'none'
exclude_patterns = ['_build', '**/*.inc.rst']
html_title = project

del _cfg
