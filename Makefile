# Ensemble: `make run` serves the demo, `make test` runs the whole suite.
# Both bootstrap .venv with the first Python >= 3.12 that runs (PYTHON overrides).

PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin

# The first candidate that actually runs and is >= 3.12: pyenv shims named
# python3.12 exist on PATH but fail unless selected, so each one is tried.
PYTHON ?= $(shell for p in python3.13 python3.12 python3 \
	$$(ls -d $$(pyenv root 2>/dev/null)/versions/3.1[2-9]*/bin/python3 2>/dev/null); do \
	"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo "$$p"; break; }; \
	done)

.PHONY: run test lint format bench clean faults

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "No Python >= 3.12 found; set PYTHON=/path/to/python3.12" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	@echo "Ensemble is on http://127.0.0.1:$(PORT)/ (Ctrl+C stops it)"
	DEBUG=1 $(BIN)/daphne -b 127.0.0.1 -p $(PORT) config.asgi:application

# Tests run with DEBUG off, as in production, but over plain HTTP; the
# throwaway key only exists here.
test: export SECRET_KEY ?= insecure-key-for-tests-only
test: export HTTPS_ONLY ?= 0
test: $(VENV)/.installed-dev
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/pytest $(PYTEST_ARGS)

# The live room against the bare stack (bench/README.md); BENCH_QUICK=1 for a
# short run. It starts its own servers and uses its own databases.
bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

# Breaks the production deployment on purpose: two daphne processes behind nginx,
# PostgreSQL and a private Redis, all on loopback (faults/). Needs nginx,
# redis-server, Chromium and a PostgreSQL (started privately if none answers).
faults: export SECRET_KEY ?= insecure-key-for-tests-only
faults: export HTTPS_ONLY ?= 0
faults: $(VENV)/.installed-dev
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/pytest -p no:django faults $(FAULTS_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .test-artifacts *.sqlite3 *.sqlite3-*
