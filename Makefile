# Two commands on a fresh machine: `make run` (seeds -> out/) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest-xdist workers: the suite is mostly pipeline runs that wait on subprocesses and servers, and two workers
# halve its wall time on a 2-core machine (21.5 -> 11.7 min); 0 runs the tests in this process, one at a time.
TEST_WORKERS ?= 2

.PHONY: run test lint bench clean browser

$(STAMP): requirements.txt requirements-dev.txt setup.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/news-ingest --input 'seeds/*.txt' --output out/

test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) tests

# The report's browser test drives Debian's chromium and chromium-driver: installed here where we can (root with
# apt-get, as on CI), otherwise one line says what is missing.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing chromium and chromium-driver for the browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	    || echo "make: could not install chromium chromium-driver: the browser test will fail"; \
	else echo "make: the browser test needs chromium and chromium-driver (apt-get install chromium chromium-driver)"; fi

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf out/ .pytest_cache
