# Two commands matter: `make run` serves toonserve at http://127.0.0.1:8000; `make test` proves it.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | sha1sum | cut -c1-12)
export PYTHONPATH := $(CURDIR)

.PHONY: venv run test lint typecheck browser weights serve-config docs screenshot bench burst

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	@echo "toonserve: starting on a local Ray; http://127.0.0.1:8000 (API docs: /docs). Ctrl-C stops it and its Ray."
	$(VENV)/bin/toonserve serve serve_config.yaml

weights: $(STAMP)
	$(VENV)/bin/toonserve weights

serve-config: $(STAMP)
	$(VENV)/bin/toonserve build-config

docs: $(STAMP)
	$(VENV)/bin/toonserve build-docs

# The page's tests drive a real Chromium: Debian's where apt can install it, else Playwright's own.
browser: $(STAMP)
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else $(VENV)/bin/playwright install chromium; fi; }

# docs/screenshot.png: the page with results, on a local service with seeded weights.
screenshot: $(STAMP) browser
	$(PY) -m bench.screenshot

bench: $(STAMP)
	$(PY) -m pip install -q -r bench/requirements.txt
	$(PY) -m bench

# Against a running service: make burst ARGS="--profile burst --rate 1 --peak 10"
burst: $(STAMP)
	$(PY) -m pip install -q -r bench/requirements.txt
	$(PY) -m bench.burst $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: lint typecheck browser
	$(PY) -m pytest
