# The two commands of README.rst: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAO_VERSION := 8.0.11
SAO := .cache/sao
DEMO_DIR := $(CURDIR)/demo/db
DEMO_DB := demo
DB_URI ?= sqlite://
PG_URI ?= postgresql://postgres@127.0.0.1:5432/
# The PostgreSQL test database: one name per checkout that tests at the same time.
PG_TEST_DB ?= test_forfait
PYTEST_ARGS ?= --durations=15
# Data sets of bench/generate.py: `make bench SIZE=huge` adds the largest.
SIZE ?=
BENCH_SIZES := small large $(SIZE)
LINT_PATHS := $(wildcard webservice_forfait demo tests bench)
CACHE := $(CURDIR)/.cache
# Cached test databases are keyed by the module's schema and data files.
SCHEMA_KEY := $(shell cat webservice_forfait/tryton.cfg webservice_forfait/*.py webservice_forfait/*.xml 2>/dev/null | md5sum | cut -c1-12)

export TRYTOND_EMAIL__FROM ?= webservice-forfait@localhost

# Debian packages the tests need: a real Dovecot for the IMAP tests,
# pdftotext to read the PDF reports, Chromium for the portal's browser test,
# wrk for the portal's benchmark; LibreOffice converts Tryton's invoice
# (an ODT template) to the PDF clients download from the portal.
SYSTEM_PACKAGES := dovecot-imapd poppler-utils chromium chromium-driver wrk \
	libreoffice-writer-nogui

.PHONY: system-deps install demo demo-reset demo-db test test-sqlite test-postgresql lint bench screenshots fuzz clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

$(SAO)/.installed:
	mkdir -p .cache
	cd .cache && rm -rf sao package tryton-sao-*.tgz && npm pack -q tryton-sao@$(SAO_VERSION) >/dev/null && tar xzf tryton-sao-$(SAO_VERSION).tgz && mv package sao && rm tryton-sao-$(SAO_VERSION).tgz
	# sao's devDependencies (puppeteer...) need versions the registry may lack: drop them
	cd $(SAO) && node -e "const f='package.json', p=JSON.parse(require('fs').readFileSync(f)); delete p.devDependencies; require('fs').writeFileSync(f, JSON.stringify(p, null, 2))"
	cd $(SAO) && npm install -q --omit=dev --legacy-peer-deps --no-audit --no-fund >/dev/null
	touch $@

$(DEMO_DIR)/trytond.conf:
	mkdir -p $(DEMO_DIR)
	printf '[database]\nuri = %s\npath = %s\n\n[web]\nlisten = 127.0.0.1:8000\nhostname = 127.0.0.1:8000\nroot = %s\n' \
		'$(DB_URI)' '$(DEMO_DIR)' '$(CURDIR)/$(SAO)' > $@

$(DEMO_DIR)/.built: $(VENV)/.installed $(DEMO_DIR)/trytond.conf
	case '$(DB_URI)' in \
		sqlite*) touch $(DEMO_DIR)/$(DEMO_DB).sqlite;; \
		postgresql*) $(BIN)/python -c "import psycopg; c = psycopg.connect('$(DB_URI)postgres', autocommit=True); c.execute('CREATE DATABASE $(DEMO_DB)')";; \
	esac
	echo admin > $(DEMO_DIR)/.password
	TRYTONPASSFILE=$(DEMO_DIR)/.password $(BIN)/trytond-admin -c $(DEMO_DIR)/trytond.conf -d $(DEMO_DB) \
		--all --activate-dependencies -u webservice_forfait account_fr -l fr --email admin@localhost
	$(BIN)/python demo/build.py -c $(DEMO_DIR)/trytond.conf -d $(DEMO_DB)
	touch $@

demo-db: $(DEMO_DIR)/.built

demo: $(VENV)/.installed $(SAO)/.installed demo-db
	@echo
	@echo "Web client: http://127.0.0.1:8000/  database: $(DEMO_DB)  login: admin / admin"
	@echo "Client portal: http://127.0.0.1:8000/$(DEMO_DB)/portal/  login: lucette.marie@chezlucette.mq / Madinina-972"
	@echo "Stop with Ctrl-C."
	$(BIN)/trytond -c $(DEMO_DIR)/trytond.conf -d $(DEMO_DB)

demo-reset:
	rm -rf $(DEMO_DIR)
	$(MAKE) demo

system-deps:
	@dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
		else \
			echo "Missing $(SYSTEM_PACKAGES) (apt-get install $(SYSTEM_PACKAGES)): the IMAP, PDF and browser tests will be skipped."; \
		fi; }

# axe-core, injected by the portal's browser test (package.json)
node_modules/.installed: package.json
	npm install -q --no-audit --no-fund >/dev/null
	touch $@

test: $(VENV)/.installed $(SAO)/.installed system-deps node_modules/.installed
	$(MAKE) test-sqlite
	@if $(BIN)/python -c "import psycopg, sys; psycopg.connect('$(PG_URI)postgres', connect_timeout=3).close()" 2>/dev/null; then \
		$(MAKE) test-postgresql; \
	elif [ -n "$(REQUIRE_POSTGRESQL)" ]; then \
		echo "PostgreSQL is required (REQUIRE_POSTGRESQL) but not reachable at $(PG_URI)"; exit 1; \
	else \
		echo "PostgreSQL not reachable at $(PG_URI): tests ran on SQLite only."; \
	fi

test-sqlite: $(VENV)/.installed
	DB_CACHE=$(CACHE)/db-sqlite-$(SCHEMA_KEY) $(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-postgresql: $(VENV)/.installed
	TRYTOND_DATABASE__URI=$(PG_URI) DB_NAME=$(PG_TEST_DB) DB_CACHE=$(CACHE)/db-postgresql-$(SCHEMA_KEY) \
		$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/flake8 $(LINT_PATHS)
	$(BIN)/isort --check-only --diff $(LINT_PATHS)

bench: $(VENV)/.installed system-deps
	$(BIN)/python bench/inbound_email.py --uri $(PG_URI)
	$(BIN)/python bench/report.py --uri $(PG_URI)
	for size in $(BENCH_SIZES); do $(BIN)/python bench/generate.py --uri $(PG_URI) --size $$size || exit 1; done
	$(BIN)/python bench/balances.py --uri $(PG_URI) --sizes $(BENCH_SIZES) --memory $(lastword $(BENCH_SIZES))
	$(BIN)/python bench/posting.py --uri $(PG_URI)
	$(BIN)/python bench/portal.py --uri $(PG_URI) --size $(lastword $(BENCH_SIZES))

# The e-mail fuzzers at length (not part of `make test`): FUZZ_EXAMPLES
# MIME trees read by the parser, a tenth of them posted through the inbox
# route, and as many mutations of the corpus, on SQLite, new examples
# each run.
FUZZ_EXAMPLES ?= 5000
fuzz: $(VENV)/.installed
	FORFAIT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FORFAIT_FUZZ_DB_EXAMPLES=$$(( $(FUZZ_EXAMPLES) / 10 )) \
	FORFAIT_MUTATIONS=$(FUZZ_EXAMPLES) FORFAIT_MUTATIONS_SEED=$$(date +%s) FORFAIT_FUZZ_RANDOM=1 \
		DB_CACHE=$(CACHE)/db-sqlite-$(SCHEMA_KEY) $(BIN)/python -m pytest -q -p no:warnings \
		webservice_forfait/tests/test_mail_fuzz.py webservice_forfait/tests/test_mail_mutations.py

# The portal's pages at desktop and phone width, and the staff's reply walk, into the documentation.
screenshots: $(VENV)/.installed system-deps node_modules/.installed
	DB_CACHE=$(CACHE)/db-sqlite-$(SCHEMA_KEY) FORFAIT_SCREENSHOTS=$(CURDIR)/webservice_forfait/doc/portal \
		$(BIN)/python -m pytest -q tests/test_portal_browser.py
	DB_CACHE=$(CACHE)/db-sqlite-$(SCHEMA_KEY) FORFAIT_SCREENSHOTS=$(CURDIR)/webservice_forfait/doc/staff \
		$(BIN)/python -m pytest -q tests/test_staff_browser.py

clean:
	rm -rf $(VENV) .cache $(DEMO_DIR) node_modules
