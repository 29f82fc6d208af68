# crmd: `make run` serves on the embedded default, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080

.PHONY: run test check lint bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "crmd needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The smtp and webhook vendors and the mail providers' receipt sources are packages of
# their own, installed beside crmd as a third party's plugin would be (each registers
# through the entry-point group crmd).
VENDOR_PLUGINS := plugins/crmd_smtp plugins/crmd_webhook plugins/crmd_providers

# setuptools tells every editable install of a flat layout to beware of folders named
# like the package in the working directory (one notice a package, on every `make run`):
# crmd's own folder is that package, so the notice is silenced, and nothing else.
export PYTHONWARNINGS := ignore:Editable installation

$(VENV)/.run-deps: setup.cfg pyproject.toml $(VENDOR_PLUGINS:%=%/setup.cfg) | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded]' $(VENDOR_PLUGINS:%=-e %)
	@touch $@

$(VENV)/.bench-deps: setup.cfg pyproject.toml $(VENDOR_PLUGINS:%=%/setup.cfg) | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded,bench]' $(VENDOR_PLUGINS:%=-e %)
	@touch $@

$(VENV)/.test-deps: setup.cfg pyproject.toml $(VENDOR_PLUGINS:%=%/setup.cfg) | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded,test]' $(VENDOR_PLUGINS:%=-e %)
	@touch $@

run: $(VENV)/.run-deps
	@echo "crmd: starting on http://127.0.0.1:$(PORT) (readiness: http://127.0.0.1:$(PORT)/readyz)"
	$(BIN)/crmd serve --port $(PORT)

lint: $(VENV)/.test-deps
	$(BIN)/ruff check crmd plugins tests bench
	$(BIN)/ruff format --check crmd plugins tests bench
	$(BIN)/mypy crmd plugins/crmd_dummy_vendor plugins/crmd_basic_ai plugins/crmd_gemini plugins/crmd_example_vendor/crmd_example_vendor plugins/crmd_smtp/crmd_smtp plugins/crmd_webhook/crmd_webhook plugins/crmd_providers/crmd_providers bench

# The console's browser tests drive Debian's Chromium (Playwright is pointed at it; it downloads no browser of its own).
CHROMIUM ?= /usr/bin/chromium

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "crmd: installing Chromium for the console's browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "crmd: the browser tests need Chromium at $(CHROMIUM): run 'sudo apt-get install chromium'" \
			"(or set CHROMIUM=/path/to/chromium)"; exit 1; \
	fi

# Two processes (pytest-xdist), a file to each: most tests wait on servers and
# subprocesses, not the CPU, and some read what an earlier test of their file left.
# Files go out in the suite's own order, the heaviest first (tests/conftest.py), not
# xdist's (the files with the most tests first), so that no process ends alone on one.
TEST_WORKERS ?= 2

test: lint $(CHROMIUM)
	CRMD_TEST_CHROMIUM=$(CHROMIUM) $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The fast tier: lint, types and every test not marked slow (browser, cluster, kill,
# bench), in about four minutes on two cores. `make test` still runs everything.
# Four processes: what is left is mostly waiting on servers, not the CPU; each property
# test tries a tenth of its examples (CRMD_TEST_TIER=check).
CHECK_WORKERS ?= 4

check: lint
	CRMD_TEST_TIER=check $(BIN)/pytest -n $(CHECK_WORKERS) --dist loadfile -m "not slow"

# The benchmark: about 25 minutes on samples of the full sizes; writes bench/results.json.
# BENCH_ARGS=--full for the full sizes (over two hours), --quick for a smoke run.
# CRMD_MONGODB__URL / CRMD_REDIS__URL measure other servers.
bench: $(VENV)/.bench-deps
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .crmd build *.egg-info
