# The two commands a newcomer needs: `make dev` and `make test`. Both install everything themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PRISM  := tools/prism/node_modules/.bin/prism
FHIR_R4 := tools/fhir-r4/node_modules/hl7.fhir.r4.examples/package.json

.PHONY: dev test lint docs analytics-check release-check sbom screenshots install install-test chromium clean

dev: $(VENV)/.installed
	$(BIN)/aftercare dev --demo

test: $(VENV)/.installed-test $(PRISM) $(FHIR_R4) chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	$(BIN)/pytest

# The documentation site (mkdocs.yml, docs/) in build/site; --strict fails on a broken link or an orphan page.
docs: $(VENV)/.installed-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The console's pages on the demo data, as PNGs under docs/screenshots (shown in the README).
screenshots: $(VENV)/.installed-test chromium
	AFTERCARE_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/console/test_every_page.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Before tagging a release: the version's CHANGELOG.md entry, every migration named there, and a database of
# each listed release upgraded to the newest revision (PostgreSQL at 127.0.0.1:5432 when it answers,
# else an embedded one; AFTERCARE_TEST_POSTGRES names another).
release-check: $(VENV)/.installed-test
	$(BIN)/pytest -q tests/project/test_changelog.py tests/aftercare/db/test_release_upgrades.py

# The analytics rollups against a recomputation from the raw facts (DATABASE_URL, or the running dev
# stack's database); exits 1 and prints samples of the rows that differ. `aftercare analytics rebuild` mends.
analytics-check: $(VENV)/.installed
	$(BIN)/aftercare analytics check

# CycloneDX SBOMs in build/sbom/: the installed environment, and the image's Python packages (from the
# requirements the Dockerfile installs, not from a built image; see tools/sbom.py). CI builds them.
sbom: $(VENV)/.installed-test
	$(BIN)/python -m tools.sbom build/sbom

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

# HL7's R4 definitions: the source of the required-binding table, which a test rebuilds and compares
# (`python -m aftercare.fhir.binding_table tools/fhir-r4/node_modules/hl7.fhir.r4.examples` writes it).
$(FHIR_R4): tools/fhir-r4/package.json tools/fhir-r4/package-lock.json
	npm ci --prefix tools/fhir-r4 --no-audit --no-fund --loglevel=error
	touch $@

# The browser tests drive Debian's chromium through Playwright (Playwright's own download is not used).
# On a Debian machine without it, install it: as root directly (CI), else through sudo when there is one.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  command -v apt-get >/dev/null 2>&1 || { echo "the browser tests need chromium at /usr/bin/chromium: install it"; exit 1; }; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	  else echo "the browser tests need chromium: run 'apt-get install -y chromium' as root"; exit 1; fi; \
	  $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium; }

clean:
	rm -rf $(VENV) tools/prism/node_modules tools/fhir-r4/node_modules .aftercare .pytest_cache .mypy_cache .ruff_cache .grimp_cache
