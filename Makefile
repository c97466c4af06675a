# Paydesk. `make demo` and `make test` work on a fresh machine; see README.md.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_DB ?= postgres://postgres@127.0.0.1:5432/paydesk
TEST_BROKER ?= redis://127.0.0.1:6379/15
TEST_CACHE ?= redis://127.0.0.1:6379/13

.PHONY: install messages gettext demo test test-fast bench services chromium fonts screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Compiled translations (.mo) are built here, not kept in git: babel's pure-Python compiler,
# so a bare machine needs nothing beyond the venv. A fuzzy or broken entry fails the build.
CATALOGUES := $(wildcard locale/*/LC_MESSAGES/django.po)
COMPILED := $(CATALOGUES:.po=.mo)

locale/%/LC_MESSAGES/django.mo: locale/%/LC_MESSAGES/django.po $(STAMP)
	$(VENV)/bin/pybabel -q compile -d locale -D django -l $*

install: $(STAMP) $(COMPILED)

# After marking strings: refresh the Japanese catalogue from the code (needs GNU gettext's
# xgettext, installed by scripts/gettext.sh), then translate the new entries in the .po.
messages: install gettext
	SECRET_KEY=messages $(PY) manage.py makemessages -l ja --no-obsolete --add-location=file \
	  -i ".venv/*" -i "tests/*" -i "bench/*" -i "node_modules/*"

gettext:
	@bash scripts/gettext.sh

services:
	@bash scripts/services.sh

chromium:
	@bash scripts/chromium.sh

fonts:
	@bash scripts/fonts.sh

# Serves the console on http://127.0.0.1:8000 with a demo Stripe account (localstripe),
# seeded through the real webhook path into an embedded SQLite database.
demo: install fonts
	DEBUG=1 $(PY) manage.py demo $(DEMO_ARGS)

TEST_ENV = DATABASE_URL=$(TEST_DB) CELERY_BROKER_URL=$(TEST_BROKER) CACHE_URL=$(TEST_CACHE) SECRET_KEY=test-secret-key
# Exit code 5 is "no tests selected": a PYTEST_ARGS selection may leave one phase empty.
PYTEST_OK = || [ $$? -eq 5 ]

# The cache is Redis as in production: presence, navigation counts, "was this sent" marks.
# Two phases: most tests spread over the machine's cores (pytest-xdist, each worker its own
# database and cache keys), then the browser and end-to-end tests, which start servers and a
# Celery worker of their own, one at a time.
test: install services chromium gettext
	$(TEST_ENV) $(PY) -m pytest -q -n auto --maxprocesses 4 -m "not browser and not e2e" $(PYTEST_ARGS) $(PYTEST_OK)
	$(TEST_ENV) $(PY) -m pytest -q -m "browser or e2e" $(PYTEST_ARGS) $(PYTEST_OK)

test-fast: install services gettext
	$(TEST_ENV) $(PY) -m pytest -q -n auto --maxprocesses 4 -m "not browser and not e2e" $(PYTEST_ARGS)

# The mirror (intake, end to end, backfill), then the inbox at 100,000 tickets, then the
# customer timeline at 1,000,000 entries, then a workflow backtest over 100,000 events. Each
# prints a table and writes its own keys of bench/results.json, keeping the others' ("inbox",
# "timeline", "workflows"); none asserts.
BENCH_ENV = DATABASE_URL=postgres://postgres@127.0.0.1:5432/paydesk_bench CELERY_BROKER_URL=redis://127.0.0.1:6379/14 \
	  SECRET_KEY=bench-secret-key

bench: install services
	$(BENCH_ENV) $(PY) -m bench $(BENCH_ARGS)
	$(BENCH_ENV) $(PY) -m bench.inbox
	$(BENCH_ENV) $(PY) -m bench.timeline
	$(BENCH_ENV) $(PY) -m bench.workflows
	$(BENCH_ENV) $(PY) -m bench.disputes
	$(BENCH_ENV) $(PY) -m bench.assist
	$(BENCH_ENV) $(PY) -m bench.search

screenshots: install chromium
	$(PY) -m bench.screenshots

clean:
	rm -rf $(VENV) paydesk.sqlite3* staticfiles .demo locale/*/LC_MESSAGES/*.mo
