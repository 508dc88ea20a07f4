# fscluster — `make run` (service on the embedded SQLite default) and `make test` (whole suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench system-deps venv clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	./scripts/install-system-deps.sh

# The service on the embedded SQLite default (var/fscluster.sqlite, demo tenant demo.local);
# memcached on 127.0.0.1:11211 is used when running (the cache fails open without it).
# A fresh Debian may lack python3-venv, the only system package this needs.
run:
	./scripts/install-system-deps.sh python3-venv
	$(MAKE) --no-print-directory venv
	mkdir -p var
	$(VENV)/bin/fscluster db seed --domains 1 --extensions 20
	@echo "--- paste into FreeSWITCH's autoload_configs/xml_curl.conf.xml (fscluster render xml_curl):"
	@$(VENV)/bin/fscluster render xml_curl
	FSCLUSTER_LOG_FORMAT=$${FSCLUSTER_LOG_FORMAT:-text} $(VENV)/bin/fscluster-xmlcurl

test: system-deps venv
	$(VENV)/bin/pytest -p no:cacheprovider -rfE

bench: system-deps venv
	$(PY) -m bench.run --out bench/results.json

clean:
	rm -rf $(VENV) var build *.egg-info
