# fscluster — `make run` (service on the embedded SQLite default) and `make test` (whole suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench system-deps venv lint clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	./scripts/install-system-deps.sh

test: system-deps venv
	$(VENV)/bin/pytest -p no:cacheprovider -rfE

bench: system-deps venv
	$(PY) -m bench.run --out bench/results.json

clean:
	rm -rf $(VENV) var build *.egg-info
