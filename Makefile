# Two commands matter: `make run` serves toonserve at http://127.0.0.1:8000; `make test` proves it.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
export PYTHONPATH := $(CURDIR)

.PHONY: venv run test lint typecheck weights serve-config docs bench burst

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	@$(PY) -m toonserve.cli weights --check
	@echo "toonserve: starting on a local Ray; http://127.0.0.1:8000 (API docs: /docs). Ctrl-C stops it and its Ray."
	$(VENV)/bin/serve run serve_config.yaml

weights: $(STAMP)
	$(PY) -m toonserve.cli weights

serve-config: $(STAMP)
	$(PY) -m toonserve.cli build-config

docs: $(STAMP)
	$(PY) -m toonserve.cli build-docs

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

test: lint typecheck
	$(PY) -m pytest
