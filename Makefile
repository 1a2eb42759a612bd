# Parley — two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8080
SERVICES := auth rooms gateway logger cleaner
SERVICE_PROJECTS := $(foreach s,$(SERVICES),-e services/$(s))

.PHONY: install browser-deps observability-deps check-observability run test test-chaos test-fast bench soak migrate clean images deploy-test

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

# What the browser tests (tests/browser) need besides Python packages: a Chromium (Debian's,
# installed with apt-get where we are root; Playwright's own download is not used) and axe-core
# from npm under var/. Where either cannot be had, a line says so and those tests are skipped.
BROWSER_TOOLS := var/browser-tools
AXE_SCRIPT := $(BROWSER_TOOLS)/node_modules/axe-core/axe.min.js
browser-deps:
	@if [ -n "$$PARLEY_CHROMIUM" ] || command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
	    || command -v google-chrome >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "browser tests: installing Chromium (apt-get install chromium)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; } >/dev/null \
	    || echo "browser tests: apt-get could not install chromium; they will be skipped"; \
	else echo "browser tests: no Chromium here and no root apt-get to install it; they will be skipped"; fi
	@[ -f $(AXE_SCRIPT) ] || { command -v npm >/dev/null \
	    && npm install --silent --no-audit --no-fund --fetch-retries=1 --fetch-timeout=60000 --prefix $(BROWSER_TOOLS) 'axe-core@^4.10' >/dev/null \
	    && echo "browser tests: installed axe-core under $(BROWSER_TOOLS)"; } \
	  || echo "browser tests: npm could not install axe-core; the axe checks will be skipped"

# promtool for the checks of deploy/prometheus (tests/test_observability.py): from the
# Prometheus release tarball where GitHub answers, else unpacked from Debian's prometheus
# package (apt-get download: nothing installed, no daemon started). Where neither can be had
# a line says so and those checks are skipped.
PROMTOOL := var/tools/promtool
PROMETHEUS_VERSION := 2.53.2
observability-deps:
	@command -v promtool >/dev/null || [ -x $(PROMTOOL) ] || { \
	  mkdir -p var/tools; tmp=$$(mktemp -d); arch=$$(dpkg --print-architecture 2>/dev/null || echo amd64); \
	  if curl -fsSL --max-time 120 -o $$tmp/prometheus.tgz \
	       https://github.com/prometheus/prometheus/releases/download/v$(PROMETHEUS_VERSION)/prometheus-$(PROMETHEUS_VERSION).linux-$$arch.tar.gz 2>/dev/null \
	     && tar -xzf $$tmp/prometheus.tgz -C $$tmp --strip-components=1 && cp $$tmp/promtool $(PROMTOOL); then \
	    echo "observability checks: promtool $(PROMETHEUS_VERSION) from the Prometheus release"; \
	  elif (cd $$tmp && timeout 300 apt-get download -q prometheus >/dev/null 2>&1) \
	     && dpkg-deb -x $$tmp/prometheus_*.deb $$tmp/deb && cp $$tmp/deb/usr/bin/promtool $(PROMTOOL); then \
	    echo "observability checks: promtool from Debian's prometheus package"; \
	  else echo "observability checks: no promtool (no Prometheus release, no Debian package); they will be skipped"; fi; \
	  rm -rf $$tmp; }

# deploy/prometheus and deploy/grafana only: promtool check config / check rules / test rules,
# and every query's metric names (deploy/README.md, "Metrics and alerts").
check-observability: install observability-deps
	$(PY) -m pytest tests/test_observability.py

# The whole suite against real RabbitMQ, Redis and PostgreSQL (see README: Testing), the web
# client included (tests/browser, headless Chromium).
test: install browser-deps observability-deps
	$(PY) -m pytest

# Unit tests only: services/*/tests/unit, in-process (no broker, database, cache or service
# process), seconds. `make test` runs them too.
test-fast: install
	$(PY) -m pytest -q services/*/tests/unit

# Faults under a steady stream of WebSocket traffic (tests/chaos): private RabbitMQ, Redis and
# PostgreSQL servers on ports 15470-15479, killed and restarted at will. Serial, 4-6 minutes.
test-chaos: install
	mkdir -p var && PARLEY_CHAOS=1 timeout 1500 $(PY) -m pytest tests/chaos -s --timeout 420 --basetemp=var/chaos

bench: install
	$(PY) bench/run_all.py

# 10 minutes of steady WebSocket traffic; memory of every process at start and end.
soak: install
	$(PY) bench/soak.py $(SOAK_ARGS)

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
