# The task index: `make help` lists every target. `make run` and `make test` work on a fresh machine
# with only Python 3.11: they create .venv, install the pinned dependencies and generate the stubs.
# `make` alone prints this help; `make all` runs the checks CI runs on embedded defaults.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Only our APIs get Python stubs: google/api and google/rpc under protos/ are vendored for other
# languages, and Python already has them from googleapis-common-protos (pulled in by grpcio-status).
PROTOS := $(shell find protos/ew -name '*.proto')
STUBS_STAMP := clients/src/ew/.stubs

export PYTHONPATH := $(CURDIR):$(CURDIR)/clients/src

# PostgreSQL and Redis of this machine, for the integration suites (override in the environment).
EW_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
EW_TEST_BROKER_URL ?= redis://127.0.0.1:6379/0
EW_TEST_RABBITMQ_URL ?= amqp://guest:guest@127.0.0.1:5672/

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

REQUIREMENTS := requirements/runtime.txt requirements/dev.txt

$(STAMP): $(REQUIREMENTS) pyproject.toml clients/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes $(addprefix -r ,$(REQUIREMENTS))
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . -e clients
	touch $@

$(STUBS_STAMP): $(STAMP) $(PROTOS)
	rm -rf clients/src/ew/roster clients/src/ew/sync
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m grpc_tools.protoc -Iprotos --python_out=clients/src --grpc_python_out=clients/src \
		--mypy_out=clients/src --mypy_grpc_out=clients/src $(PROTOS)
	$(PY) -m grpc_tools.protoc -Iprotos --include_imports --include_source_info \
		--descriptor_set_out=clients/src/ew/sync/v1/api.binpb $(PROTOS)
	touch $@

.PHONY: install
install: $(STUBS_STAMP) ## Create .venv with the pinned dependencies and generate the gRPC stubs

.PHONY: proto
proto: $(STUBS_STAMP) ## Generate the gRPC stubs from protos/ into clients/src/ew

# pip-compile keeps the current pins; LOCK_ARGS='--upgrade-package NAME' moves one on purpose.
.PHONY: lock
lock: ## Re-pin requirements/{runtime,dev}.txt with hashes from the .in files (needs the registry)
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv && .lockvenv/bin/pip install --quiet --upgrade pip pip-tools==7.6.2
	cd requirements && for set in runtime dev; do \
		CUSTOM_COMPILE_COMMAND="make lock" ../.lockvenv/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
			--strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS) -o $$set.txt $$set.in || exit 1; \
	done
	rm -rf .lockvenv

.PHONY: run
run: install ## Run the whole job on embedded defaults (SQLite, stub broker, OneRoster sandbox)
	$(PY) -m services.demo

.PHONY: serve
serve: install ## Run the demo, then keep every service running for ew-sync until Ctrl-C
	$(PY) -m services.demo --serve

.PHONY: test
test: install ## Run every test on embedded defaults (SQLite, stub broker)
	$(PY) -m pytest

.PHONY: test-integration
test-integration: install ## Run the service, end-to-end, broker and bad-input suites against PostgreSQL, Redis and RabbitMQ
	EW_TEST_DATABASE_URL=$(EW_TEST_DATABASE_URL) EW_TEST_BROKER_URL=$(EW_TEST_BROKER_URL) \
		EW_TEST_RABBITMQ_URL=$(EW_TEST_RABBITMQ_URL) $(PY) -m pytest tests/service tests/e2e tests/integration tests/badinput

.PHONY: test-faults
test-faults: install ## Fault suite: ClassLink, process, Redis and PostgreSQL failures mid-sync, against real processes
	EW_TEST_DATABASE_URL=$(EW_TEST_DATABASE_URL) EW_TEST_BROKER_URL=$(EW_TEST_BROKER_URL) \
		$(PY) -m pytest tests/faults

.PHONY: test-browser
test-browser: install ## Click through the ClassLink Settings page in Debian's chromium against real processes (worker on Redis)
	EW_TEST_BROKER_URL=$(EW_TEST_BROKER_URL) $(PY) -m pytest tests/browser

BUF := .tools/node_modules/.bin/buf

$(BUF):
	npm install --silent --prefix .tools @bufbuild/buf@1.75.0

.PHONY: proto-lint
proto-lint: $(BUF) ## buf lint (STANDARD) and buf format check of protos/ (needs npm)
	$(BUF) lint
	$(BUF) format -d --exit-code --path protos/ew

.PHONY: lint
lint: install ## ruff check and format check
	$(VENV)/bin/ruff check services clients/src/ew/client benchmarks tests
	$(VENV)/bin/ruff format --check services clients/src/ew/client benchmarks tests

.PHONY: format
format: install ## Format the code with ruff
	$(VENV)/bin/ruff check --fix services clients/src/ew/client benchmarks tests
	$(VENV)/bin/ruff format services clients/src/ew/client benchmarks tests

.PHONY: typecheck
typecheck: install ## mypy --strict
	$(VENV)/bin/mypy services clients/src/ew/client benchmarks tests

.PHONY: migrate
migrate: install ## Apply the migrations of both services to EW_ROSTER_DATABASE_URL / EW_SYNC_DATABASE_URL
	$(PY) -m services.roster.migrate
	$(PY) -m services.sync.migrate

.PHONY: migrations-check
migrations-check: install ## Fail when models and migrations have drifted apart
	$(PY) -m services.roster.migrate --check
	$(PY) -m services.sync.migrate --check

.PHONY: run-roster
run-roster: install ## Run the roster service alone (EW_ROSTER_*, EW_JWT_* settings)
	$(PY) -m services.roster

.PHONY: run-sync
run-sync: install ## Run the sync service alone (EW_SYNC_*, EW_JWT_*, EW_SECRET_KEYS settings)
	$(PY) -m services.sync

.PHONY: run-worker
run-worker: install ## Run a Dramatiq worker for sync runs (EW_BROKER_URL must name Redis or RabbitMQ)
	$(PY) -m services.sync.worker

.PHONY: run-scheduler
run-scheduler: install ## Run the AutoSync scheduler alone (EW_BROKER_URL: Redis or RabbitMQ; several replicas are safe)
	$(PY) -m services.sync.scheduler

.PHONY: run-gateway
run-gateway: install ## Run the HTTP/JSON gateway alone (EW_GATEWAY_* settings: listen address, backends, CORS)
	$(PY) -m services.gateway

.PHONY: run-webhook-sender
run-webhook-sender: install ## Deliver webhook events from the outbox (EW_SYNC_DATABASE_URL, EW_WEBHOOK_*)
	$(PY) -m services.sync.webhooks

.PHONY: rotate-secrets
rotate-secrets: install ## Re-encrypt stored ClassLink secrets under the newest EW_SECRET_KEYS key
	$(PY) -m services.sync.rotate_secrets

.PHONY: token
token: install ## Print a dev token (DISTRICT=d1 ROLE=district_admin PLAN=district_premium)
	EW_JWT_ALLOW_DEV_KEY=true $(PY) -m services.common.devtoken --district $(or $(DISTRICT),d1) \
		--role $(or $(ROLE),district_admin) --plan $(or $(PLAN),district_premium)

# Knobs of the sync bench: BENCH_SIZES=5000,20000 BENCH_BACKENDS=sqlite make bench-sync is a quick pass.
BENCH_SIZES ?= 20000,100000,250000
BENCH_BACKENDS ?= sqlite,postgresql

.PHONY: bench-roster
bench-roster: install ## Stage and commit 100,000 teachers in one change set (BENCH_BACKENDS)
	$(PY) -m benchmarks.roster --backends $(BENCH_BACKENDS)

.PHONY: bench-oneroster
bench-oneroster: install ## Pull 100,000 teachers from the sandbox, against a bare httpx loop
	$(PY) -m benchmarks.oneroster

.PHONY: bench-planner
bench-planner: install ## The planner alone at 20,000 and 100,000 teachers: time and how linear it is
	$(PY) -m benchmarks.planner

.PHONY: bench-sync
bench-sync: install ## Syncs at BENCH_SIZES on BENCH_BACKENDS against their floors, slow server, load; writes benchmarks/results/
	$(PY) -m benchmarks.sync --sizes $(BENCH_SIZES) --backends $(BENCH_BACKENDS)

.PHONY: bench
bench: bench-roster bench-oneroster bench-planner bench-sync ## Every benchmark at full size (BENCH_SIZES, BENCH_BACKENDS)

.PHONY: all
all: lint typecheck migrations-check test ## The checks CI runs on embedded defaults
