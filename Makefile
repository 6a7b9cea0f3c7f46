# Two commands for a new user: `make run` and `make test`. Both create the virtualenv when needed.
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 5000
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Front-end libraries: installed from the npm registry (versions pinned in package-lock.json), served locally.
ASSETS := static/vendor/chart.umd.js
# The English catalogue (docs/I18N.md): messages.po is kept in git, the compiled .mo is generated.
CATALOGUE := translations/en/LC_MESSAGES/messages
# Marks beyond pybabel's defaults (_, gettext, N_ …): lazy labels, Msg texts, refused actions, permission reasons.
I18N_KEYWORDS := -k _l -k lazy_gettext -k Msg -k ActionError -k _deny

.PHONY: run serve test test-postgres lint bench bench-deps soak browser-deps assets translations dist clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## assets: Chart.js for the 总览 charts, from the npm registry into static/vendor/ (no CDN: intranets are offline)
assets: $(ASSETS)

$(ASSETS): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing Debian nodejs and npm for the front-end assets"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --no-audit --no-fund
	mkdir -p static/vendor
	cp node_modules/chart.js/LICENSE.md static/vendor/chart.js.LICENSE.md
	cp node_modules/chart.js/dist/chart.umd.js $(ASSETS)

## translations: extract every marked string into messages.pot, merge it into the English catalogue, compile
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg $(I18N_KEYWORDS) --project=zhenggai-tracker --version=0.1.0 \
	  --copyright-holder=zhenggai-tracker --sort-by-file --width=120 -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations -l en --ignore-obsolete --width=120
	$(BIN)/pybabel compile -d translations -l en --statistics
	@echo "now translate the new (empty) and fuzzy entries of $(CATALOGUE).po, then run make translations again"

# The compiled catalogue, rebuilt whenever the .po changes (run, test and dist need it; pages fall back to Chinese without).
$(CATALOGUE).mo: $(CATALOGUE).po $(STAMP)
	$(BIN)/pybabel compile -d translations -l en

## run: migrate, load the demo on first start, serve on http://127.0.0.1:$(PORT) with the scheduler beside it
run: $(STAMP) $(ASSETS) $(CATALOGUE).mo
	$(BIN)/tracker db upgrade
	$(BIN)/tracker demo load
	$(BIN)/tracker schedule refresh
	@echo "整改台账: http://127.0.0.1:$(PORT)  (admin / zhenggai-demo); scheduler running too; Ctrl-C stops both"
	$(BIN)/python -m tracker.launcher --port $(PORT)

## test: the whole suite (SQLite unless DATABASE_URL names PostgreSQL), browser tests included
test: $(STAMP) $(ASSETS) $(CATALOGUE).mo browser-deps
	$(BIN)/pytest

## lint: ruff over the code and the tests
lint: $(STAMP)
	$(BIN)/ruff check tracker tests config.py migrations

## bench: the benchmarks of docs/PERFORMANCE.md on a PostgreSQL database of their own, made anew with SCALE
## generated tasks (default 10⁵; SCALE=1000000 for the national size); BENCH_JSON=FILE also writes the figures
BENCH_URL ?= postgresql://postgres@127.0.0.1:5432/tracker_bench
SCALE     ?= 100000
bench: $(STAMP) bench-deps
	$(BIN)/python -m bench.generate --fresh --database-url $(BENCH_URL) --scale $(SCALE)
	$(BIN)/python -m bench.run --database-url $(BENCH_URL) $(if $(BENCH_JSON),--json $(BENCH_JSON))

## soak: SOAK_MINUTES (default 10) of bounded mixed traffic — pages, filters, task pages, progress reports and
## extension requests (web and API) — against 4 gunicorn workers, the scheduler and an SMTP server on loopback, on
## a PostgreSQL database of its own (SOAK_URL, made anew and dropped): zero errors, flat memory, no mail lost or
## duplicated (bench/soak.py; figures in docs/RELIABILITY.md); SOAK_JSON=FILE also writes the figures
SOAK_URL     ?= postgresql://postgres@127.0.0.1:5432/tracker_soak
SOAK_MINUTES ?= 10
soak: $(STAMP)
	$(BIN)/python -m bench.soak --database-url $(SOAK_URL) --minutes $(SOAK_MINUTES) $(if $(SOAK_JSON),--json $(SOAK_JSON))

## bench-deps: Debian's wrk for the throughput figures (several gunicorn workers on loopback)
bench-deps:
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing Debian wrk for the throughput benchmark"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; }

## browser-deps: Debian's Chromium for the Playwright tests (browser downloads are not possible here)
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

## dist: the offline bundle for an intranet host, dist/zhenggai-tracker-<version>-offline.tar.gz: the app's wheel
## (templates, static files with static/vendor, migrations, the compiled catalogue and config inside), a wheel of
## every runtime dependency (gunicorn and psycopg included) at the versions of $(VENV), requirements.txt pinning
## them by hash, INSTALL.txt and DEPLOY.md; installs with pip install --no-index (tools/offline_bundle.py)
dist: $(STAMP) $(ASSETS) $(CATALOGUE).mo
	$(BIN)/python -m tools.offline_bundle --out dist

clean:
	rm -rf $(VENV) build dist *.egg-info node_modules static/vendor
