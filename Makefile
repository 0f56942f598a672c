# The two commands a newcomer needs: `make dev` and `make test`. Both install everything themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PRISM  := tools/prism/node_modules/.bin/prism

.PHONY: dev test lint install install-test clean

dev: $(VENV)/.installed
	$(BIN)/aftercare dev --demo

test: $(VENV)/.installed-test $(PRISM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Aftercare needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

# Prism validates every provider request against the provider's own OpenAPI spec in the tests.
$(PRISM): tools/prism/package.json tools/prism/package-lock.json
	npm ci --prefix tools/prism --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) tools/prism/node_modules .aftercare .pytest_cache .mypy_cache .ruff_cache
