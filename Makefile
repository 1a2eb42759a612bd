# Parley — two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8080
SERVICES := auth rooms gateway logger cleaner
SERVICE_PROJECTS := $(foreach s,$(SERVICES),-e services/$(s))

.PHONY: install run test test-fast bench migrate clean images deploy-test

# The virtualenv is rebuilt whenever a dependency list changes.
$(VENV)/.installed: common/pyproject.toml $(foreach s,$(SERVICES),services/$(s)/pyproject.toml) requirements-dev.txt clients/cli/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e 'common[asyncio,nameko,postgres]' $(SERVICE_PROJECTS) -e clients/cli -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# Checks RabbitMQ and Redis, migrates the SQLite datastores under var/, starts all five
# processes (honcho, see Procfile) and serves the web client at http://localhost:$(PORT).
run: install
	PORT=$(PORT) $(PY) scripts/run_local.py

migrate: install
	$(PY) scripts/run_local.py --migrate-only

# The whole suite against real RabbitMQ, Redis and PostgreSQL (see README: Testing).
test: install
	$(PY) -m pytest

bench: install
	$(PY) bench/run_all.py

# Every container image (deploy/images.sh: official images where a registry answers, built
# from Debian packages where not, PARLEY_OFFLINE=1 forces that).
images:
	deploy/images.sh

# The container deployment end to end: build, compose up scaled, smoke through the load
# balancer, segmentation, a killed rooms replica, then the Swarm stack (deploy/README.md).
deploy-test: install
	PY=$(PY) deploy/test/deploy_test.sh

clean:
	rm -rf $(VENV) var .pytest_cache
