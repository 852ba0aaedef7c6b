# CityStream — the commands a newcomer types. Every target installs what it needs first, idempotently.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
PYTEST_ARGS ?=

.PHONY: help install kustomize system-packages assets infra run test test-unit test-integration chaos bench down status schemas clean-state

help:
	@echo "make run     install what is missing, start Kafka, TimescaleDB and every service; Ctrl-C stops all"
	@echo "make test    install what is missing, start the infrastructure, run the whole test suite"
	@echo "make chaos   the broker-failure tests alone (a 3-broker cluster of their own; make test runs them too)"
	@echo "make bench   run the benchmark against the running platform (raw ceiling measured beside it)"
	@echo "make down    stop Kafka and TimescaleDB (data stays; 'citystream dev reset' deletes it)"

system-packages:
	@bash deploy/local/install-system-packages.sh

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

# kustomize renders deploy/k8s/overlays in the unit tests (go install, cached in .venv/bin).
kustomize: $(STAMP)
	@bash deploy/k8s/install-kustomize.sh

# The pages' libraries (web/: Leaflet, leaflet.markercluster, uPlot) bundled by esbuild into each service's
# static/vendor/. The bundles are committed, so without node/npm `make run` serves the committed ones.
WEB_STAMP := web/node_modules/.built-$(shell cat web/package.json web/package-lock.json web/build.mjs web/src/* | sha256sum | cut -c1-16)

$(WEB_STAMP): web/package.json web/package-lock.json web/build.mjs $(wildcard web/src/*)
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "npm not found: keeping the committed bundles in services/*/static/vendor/"; \
	elif (cd web && npm ci --no-audit --no-fund --loglevel=error && node build.mjs); then \
	  rm -f web/node_modules/.built-* && touch $@; \
	else echo "warning: web/ build failed; keeping the committed bundles in services/*/static/vendor/" >&2; fi

assets: $(WEB_STAMP)

install: system-packages $(STAMP) kustomize assets

# `dev env` points migrate and topics at the runtime just started, also when CITYSTREAM_DEV_* moved its ports.
infra: install
	$(BIN)/citystream dev up
	eval "$$($(BIN)/citystream dev env)" && $(BIN)/citystream db migrate && $(BIN)/citystream topics create

run: install
	$(BIN)/citystream run

test: infra
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

# The three-broker cluster tests alone (`make test` runs them with the rest): each starts a cluster of its own on
# free loopback ports and a state dir of its own, kills brokers under load and prints its figures (-s) as one JSON
# line starting "chaos:". About 4 minutes on two cores.
chaos: infra
	$(BIN)/pytest tests/integration/cluster -s $(PYTEST_ARGS)

# Like infra: the benchmark talks to the runtime `dev up` started, also on moved CITYSTREAM_DEV_* ports.
# Options pass through, e.g. `make bench BENCH_ARGS="--anomaly-workers 2 --sink-workers 2 --http-workers 2"`.
bench: infra
	eval "$$($(BIN)/citystream dev env)" && $(BIN)/citystream bench $(BENCH_ARGS)

down:
	@test -x $(BIN)/citystream && $(BIN)/citystream dev down || true

status: install
	$(BIN)/citystream dev status

schemas: install
	$(BIN)/citystream schemas generate
