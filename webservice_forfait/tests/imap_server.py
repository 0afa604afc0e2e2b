"""A real Dovecot IMAP server on loopback, for the tests

It runs from a temporary directory with its own configuration, on free ports,
and never reads or changes the system's Dovecot (/etc/dovecot, /run/dovecot).
Debian package: dovecot-imapd.
"""
import atexit
import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

USER = 'update@webservice.mq'
PASSWORD = 'forfait-test-password'

# Dovecot 2.3 (Debian 12), tested
CONFIG_23 = """\
base_dir = %(directory)s/run
state_dir = %(directory)s/state
instance_name = forfait-test
protocols = imap
listen = 127.0.0.1
log_path = %(directory)s/dovecot.log
default_internal_user = %(internal_user)s
default_internal_group = %(internal_group)s
default_login_user = %(login_user)s
first_valid_uid = 1
mail_uid = %(mail_uid)s
mail_gid = %(mail_gid)s
mail_location = maildir:%(directory)s/mail
namespace inbox {
  inbox = yes
}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = %(directory)s/passwd
}
userdb {
  driver = passwd-file
  args = %(directory)s/passwd
}
ssl = yes
ssl_cert = <%(directory)s/cert.pem
ssl_key = <%(directory)s/key.pem
"""

# Dovecot 2.4 (Debian 13): written from the 2.4 documentation, UNTESTED
CONFIG_24 = """\
dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
base_dir = %(directory)s/run
state_dir = %(directory)s/state
instance_name = forfait-test
protocols = imap
listen = 127.0.0.1
log_path = %(directory)s/dovecot.log
default_internal_user = %(internal_user)s
default_internal_group = %(internal_group)s
default_login_user = %(login_user)s
first_valid_uid = 1
mail_uid = %(mail_uid)s
mail_gid = %(mail_gid)s
mail_driver = maildir
mail_path = %(directory)s/mail
namespace inbox {
  inbox = yes
}
auth_allow_cleartext = yes
auth_mechanisms = plain login
auth_failure_delay = 0
passdb passwd-file {
  driver = passwd-file
  passwd_file_path = %(directory)s/passwd
}
userdb passwd-file {
  driver = passwd-file
  passwd_file_path = %(directory)s/passwd
}
ssl = yes
ssl_server_cert_file = %(directory)s/cert.pem
ssl_server_key_file = %(directory)s/key.pem
"""

# Common to both versions
SERVICES = """\
service imap-login {
  inet_listener imap {
    port = %(port)s
  }
  inet_listener imaps {
    port = %(ssl_port)s
    ssl = yes
  }
  %(chroot)s
}
service anvil {
  %(chroot)s
  # No authentication penalty: after the wrong password test, the next
  # logins from 127.0.0.1 would wait for seconds.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
"""


def _binary():
    return (shutil.which('dovecot')
        or shutil.which('dovecot', path='/usr/sbin:/usr/local/sbin:/sbin'))


def _version(binary):
    "Return the (major, minor) version of dovecot"
    output = subprocess.run([binary, '--version'], capture_output=True,
        text=True, check=True).stdout
    return tuple(int(n) for n in re.match(r'(\d+)\.(\d+)', output).groups())


def _existing_user(*names):
    for name in names:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    raise RuntimeError("none of the users %s exists" % ', '.join(names))


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(('127.0.0.1', 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _accepts(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def _exited(process):
    "Tell if process exited, without reaping it (its group stays ours)"
    return os.waitid(os.P_PID, process.pid,
        os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _quote(folder):
    return '"%s"' % folder.replace('\\', '\\\\').replace('"', '\\"')


def _ok(response):
    typ, data = response
    if typ != 'OK':
        raise imaplib.IMAP4.error('%s %r' % (typ, data))
    return data


class Dovecot:
    """Dovecot serving the mailbox of one user on 127.0.0.1

    Plain IMAP (with STARTTLS) on port, IMAP over TLS on ssl_port, with a
    self-signed certificate trusted by ssl_context().
    """
    host = '127.0.0.1'
    timeout = 10

    def __init__(self, user=USER, password=PASSWORD):
        self.user = user
        self.password = password
        self.directory = None
        self.process = None
        self.port = self.ssl_port = None
        self.version = None

    @staticmethod
    def available():
        "Tell if dovecot (and openssl, a dependency of it) is installed"
        return bool(_binary() and shutil.which('openssl'))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def path(self, *names):
        return os.path.join(self.directory, *names)

    def start(self):
        binary = _binary()
        self.version = _version(binary)
        self.directory = tempfile.mkdtemp(prefix='forfait-dovecot-')
        atexit.register(self.stop)
        try:
            # Dovecot's unprivileged processes read the files in it
            os.chmod(self.directory, 0o755)
            self._certificate()
            self._mailbox()
            for attempt in range(3):
                self.port, self.ssl_port = _free_ports(2)
                self._configure()
                if self._launch(binary):
                    return self
            raise RuntimeError("dovecot found no free port\n" + self.tail())
        except BaseException:
            self.stop()
            raise

    def stop(self):
        "Stop the server, with all its processes, and remove its directory"
        atexit.unregister(self.stop)
        process, self.process = self.process, None
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while not _exited(process) and time.monotonic() < deadline:
                time.sleep(0.01)
            # The master is not reaped yet: the group id cannot be reused
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def tail(self, lines=20):
        "Return the end of the output and log of dovecot"
        text = ''
        for name in ['dovecot.out', 'dovecot.log']:
            try:
                with open(self.path(name), errors='replace') as file:
                    text += ''.join(file.readlines()[-lines:])
            except OSError:
                pass
        return text

    def ssl_context(self):
        "Return a client SSL context that trusts the server's certificate"
        return ssl.create_default_context(cafile=self.path('cert.pem'))

    def connect(self):
        "Return an imaplib connection, logged in"
        imap = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
        try:
            imap.login(self.user, self.password)
        except BaseException:
            imap.shutdown()
            raise
        return imap

    def append(self, raw, folder='INBOX'):
        "Put a message in folder, created if missing; return its UID"
        with self.connect() as imap:
            if _ok(imap.list('""', _quote(folder))) == [None]:
                _ok(imap.create(_quote(folder)))
            data = _ok(imap.append(_quote(folder), None, None, raw))
        return int(re.search(rb'\[APPENDUID \d+ (\d+)\]', data[-1]).group(1))

    def messages(self, folder='INBOX'):
        "Return the sorted [(uid, flags)] of folder, flags without \\Recent"
        with self.connect() as imap:
            _ok(imap.select(_quote(folder), readonly=True))
            data = _ok(imap.uid('FETCH', '1:*', '(FLAGS)'))
        messages = []
        for item in data:
            if item is not None:
                uid = int(re.search(rb'UID (\d+)', item).group(1))
                flags = {f.decode() for f in imaplib.ParseFlags(item)}
                messages.append((uid, flags - {'\\Recent'}))
        return sorted(messages)

    def _certificate(self):
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec',
                '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
                '-keyout', self.path('key.pem'), '-out', self.path('cert.pem'),
                '-days', '2', '-subj', '/CN=localhost',
                '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
            stdin=subprocess.DEVNULL, capture_output=True, check=True)

    def _mailbox(self):
        # uid, gid and home come from mail_uid, mail_gid and mail_location
        with open(self.path('passwd'), 'w') as file:
            file.write('%s:{PLAIN}%s::::::\n' % (self.user, self.password))
        os.chmod(self.path('passwd'), 0o644)
        os.mkdir(self.path('mail'))
        if os.geteuid() == 0:
            # Dovecot refuses mail access as root
            owner = _existing_user('nobody')
            os.chown(self.path('mail'), owner.pw_uid, owner.pw_gid)

    def _configure(self):
        if os.geteuid() == 0:
            # The users of Debian's dovecot package, else nobody
            internal = _existing_user('dovecot', 'nobody')
            login = _existing_user('dovenull', 'nobody')
            mail = _existing_user('nobody')
            chroot = ''
        else:
            # Everything runs as the current user, without chroot
            internal = login = mail = pwd.getpwuid(os.geteuid())
            chroot = 'chroot ='
        values = {
            'directory': self.directory,
            'port': self.port,
            'ssl_port': self.ssl_port,
            'internal_user': internal.pw_name,
            'internal_group': grp.getgrgid(internal.pw_gid).gr_name,
            'login_user': login.pw_name,
            'mail_uid': mail.pw_uid,
            'mail_gid': mail.pw_gid,
            'chroot': chroot,
            }
        config = CONFIG_24 if self.version >= (2, 4) else CONFIG_23
        with open(self.path('dovecot.conf'), 'w') as file:
            file.write((config + SERVICES) % values)

    def _launch(self, binary):
        "Start dovecot; return False if a port was taken meanwhile"
        for name in ['dovecot.out', 'dovecot.log']:
            if os.path.exists(self.path(name)):
                os.remove(self.path(name))
        with open(self.path('dovecot.out'), 'wb') as out:
            self.process = subprocess.Popen(
                [binary, '-F', '-c', self.path('dovecot.conf')],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and not _exited(self.process):
            if all(_accepts(self.host, p) for p in [self.port, self.ssl_port]):
                return True
            time.sleep(0.02)
        tail = self.tail()
        process, self.process = self.process, None
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if 'Address already in use' in tail:
            return False
        raise RuntimeError(
            "dovecot did not start listening on %s:%s and %s:%s\n%s"
            % (self.host, self.port, self.host, self.ssl_port, tail))
