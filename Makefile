# Two commands for a new user: `make run` and `make test`. Both create the virtualenv when needed.
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 5000
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run serve test test-postgres lint browser-deps dist clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: migrate, load the demo on first start, serve on http://127.0.0.1:$(PORT) with the scheduler beside it
run: $(STAMP)
	$(BIN)/tracker db upgrade
	$(BIN)/tracker demo load
	$(BIN)/tracker schedule refresh
	@echo "整改台账: http://127.0.0.1:$(PORT)  (admin / zhenggai-demo); scheduler running too; Ctrl-C stops both"
	$(BIN)/python -m tracker.launcher --port $(PORT)

## test: the whole suite (SQLite unless DATABASE_URL names PostgreSQL), browser tests included
test: $(STAMP) browser-deps
	$(BIN)/pytest

## lint: ruff over the code and the tests
lint: $(STAMP)
	$(BIN)/ruff check tracker tests config.py migrations

## browser-deps: Debian's Chromium for the Playwright tests (browser downloads are not possible here)
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

## dist: a wheel of the app (templates, static files, migrations and config inside)
dist: $(STAMP)
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .

clean:
	rm -rf $(VENV) build dist *.egg-info
