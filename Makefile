# Parley — two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8080
SERVICES := auth rooms gateway logger cleaner
SERVICE_PROJECTS := $(foreach s,$(SERVICES),-e services/$(s))

.PHONY: install run test test-chaos test-fast bench soak migrate clean

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

# Faults under a steady stream of WebSocket traffic (tests/chaos): private RabbitMQ, Redis and
# PostgreSQL servers on ports 15470-15479, killed and restarted at will. Serial, 4-6 minutes.
test-chaos: install
	mkdir -p var && PARLEY_CHAOS=1 timeout 1500 $(PY) -m pytest tests/chaos -s --timeout 420 --basetemp=var/chaos

bench: install
	$(PY) bench/run_all.py

# 10 minutes of steady WebSocket traffic; memory of every process at start and end.
soak: install
	$(PY) bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
