# mlci — the two commands a newcomer needs: `make demo` and `make test`.
# Both create the virtualenv from the lock file themselves (python3.11 is the only prerequisite).

SHELL  := /bin/bash
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements/dev.txt
STAMP  := $(VENV)/.installed
export MLFLOW_DISABLE_TELEMETRY ?= true

# The editable install is setuptools' strict mode: a link tree (build/__editable__.*/mlci) that maps ml/,
# api/ and dashboard/ to mlci, mlci.api and mlci.dashboard exactly as the wheel does, so mypy, coverage and
# import-linter see the package a team installs. A module added or removed re-links it.
SOURCES := $(shell find ml api dashboard -type f \( -name '*.py' -o -name '*.j2' -o -name '*.toml' \) -not -path '*/__pycache__/*' 2>/dev/null | sort)
LINKED  := $(VENV)/.linked-$(shell printf '%s\n' $(SOURCES) | cksum | cut -d' ' -f1)

# No registry needed: images build on local Debian bases (docker/base-image.sh). Corporate
# agents that pull python:3.11-slim-bookworm / nginx set these to the public images instead.
export MLCI_BASE_IMAGE ?= mlci-base/python:3.11-bookworm
export MLCI_ROUTER_BASE_IMAGE ?= mlci-base/nginx:bookworm
MLFLOW_UI_PORT ?= 5000

.PHONY: demo down test test-python test-groovy lint format machine venv lock dist clean help mlflow-ui

help:
	@echo "make demo   the whole line on the demo project: test, train, gate, build, deploy staging,"
	@echo "            approve, deploy production; leaves routers, dashboard and MLflow UI running"
	@echo "make down   stop everything make demo started"
	@echo "make test   run every test (Python and Groovy)"
	@echo "make lock   recompile requirements/*.txt from setup.cfg"
	@echo "make dist   build the mlci wheel and sdist of resources/io/mlci/VERSION into dist/"

venv: $(LINKED)

$(LINKED): $(STAMP)
	@rm -f $(VENV)/.linked-*
	@echo "linking mlci (editable, strict) into $(VENV)"
	@$(BIN)/pip install --quiet --no-deps --no-build-isolation -e . --config-settings editable_mode=strict \
		>$(VENV)/link.log 2>&1 || { cat $(VENV)/link.log; exit 1; }
	@touch $@


# The venv is rebuilt whenever a lock, the installer or the package metadata changes. The lock is
# installed as on the agents, by resources/io/mlci/install_lock.py: uv bootstrapped from the hashed
# requirements/installer.txt by the venv's own pip, then `uv pip sync --require-hashes` (exactly the
# locked versions, nothing resolved, whatever is newer upstream) and `uv pip check`. pip's index
# settings (PIP_INDEX_URL, pip.conf) apply; the uv wheel is kept in ~/.cache/mlci/installer.
$(STAMP): $(LOCK) requirements/installer.txt resources/io/mlci/install_lock.py setup.cfg pyproject.toml
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || .ci/bootstrap-python
	$(PYTHON) -m venv $(VENV)
	$(PYTHON) resources/io/mlci/install_lock.py --venv $(VENV) --lock $(LOCK) --installer-lock requirements/installer.txt
	@touch $@

demo: $(LINKED)
	@bash docker/engine.sh
	@bash docker/base-image.sh all
	MLCI_PRODUCTION_DASHBOARD_TRACKING_URI=$${MLCI_PRODUCTION_DASHBOARD_TRACKING_URI:-http://host.docker.internal:$(MLFLOW_UI_PORT)} \
		$(BIN)/mlci pipeline run --approve
	@$(MAKE) --no-print-directory mlflow-ui
	@echo
	@echo "Running now:"
	@echo "  production API  http://127.0.0.1:8080/docs   (router; blue/green behind it)"
	@echo "  staging API     http://127.0.0.1:8081/docs"
	@echo "  dashboard       http://127.0.0.1:8501        (follows production)"
	@echo "  MLflow UI       http://127.0.0.1:$(MLFLOW_UI_PORT)"
	@echo "  status          $(BIN)/mlci status"
	@echo "Change a hyperparameter in mlci.yaml and run make demo again; make down stops everything."

# The MLflow UI on the embedded store, in the background (pid in .mlci/mlflow-ui.pid); a second
# server on the Docker bridge's gateway address (pid in .mlci/mlflow-gateway.pid; docker/host-gateway.sh
# finds the address `host-gateway` resolves to, also on engines whose IPAM records no gateway) is what
# the demo's dashboard container reads as http://host.docker.internal:PORT: that address is reachable from this
# machine and its containers only (never 0.0.0.0). MLflow 3 checks the Host header: that name is allowed.
# One worker each and no job runner (MLflow 3's huey consumers, for GenAI jobs mlci does not run): one
# person's UI needs no more, and on a busy 2-core box uvicorn's health check kills and respawns
# mlflow's default four workers before any answers.
mlflow-ui: $(LINKED)
	@if [ -f .mlci/mlflow-ui.pid ] && kill -0 "$$(cat .mlci/mlflow-ui.pid)" 2>/dev/null; then \
		echo "MLflow UI already running (pid $$(cat .mlci/mlflow-ui.pid))"; \
	else \
		mkdir -p .mlci; \
		MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false nohup $(BIN)/mlflow ui --host 127.0.0.1 --port $(MLFLOW_UI_PORT) --workers 1 \
			--backend-store-uri sqlite:///$(CURDIR)/.mlci/mlflow.db >.mlci/mlflow-ui.log 2>&1 & \
		echo $$! > .mlci/mlflow-ui.pid; \
		for i in $$(seq 1 90); do (exec 3<>/dev/tcp/127.0.0.1/$(MLFLOW_UI_PORT)) 2>/dev/null && break; sleep 1; done; \
		echo "MLflow UI started (pid $$(cat .mlci/mlflow-ui.pid), log .mlci/mlflow-ui.log)"; \
	fi
	@gateway=$$(bash docker/host-gateway.sh); \
	if [ -z "$$gateway" ]; then \
		echo "no Docker bridge address: the dashboard container cannot read MLflow (is the engine running?)"; \
	elif [ -f .mlci/mlflow-gateway.pid ] && kill -0 "$$(cat .mlci/mlflow-gateway.pid)" 2>/dev/null; then \
		echo "MLflow for containers already running (pid $$(cat .mlci/mlflow-gateway.pid))"; \
	else \
		MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false nohup $(BIN)/mlflow server --host "$$gateway" --port $(MLFLOW_UI_PORT) --workers 1 \
			--allowed-hosts "host.docker.internal,host.docker.internal:$(MLFLOW_UI_PORT),$$gateway,$$gateway:$(MLFLOW_UI_PORT)" \
			--backend-store-uri sqlite:///$(CURDIR)/.mlci/mlflow.db >.mlci/mlflow-gateway.log 2>&1 & \
		echo $$! > .mlci/mlflow-gateway.pid; \
		for i in $$(seq 1 90); do (exec 3<>/dev/tcp/$$gateway/$(MLFLOW_UI_PORT)) 2>/dev/null && break; sleep 1; done; \
		echo "MLflow for containers on http://$$gateway:$(MLFLOW_UI_PORT) (pid $$(cat .mlci/mlflow-gateway.pid), log .mlci/mlflow-gateway.log)"; \
	fi

down: $(LINKED)
	-$(BIN)/mlci down --env production
	-$(BIN)/mlci down --env staging
	@if [ -f .mlci/mlflow-ui.pid ]; then kill "$$(cat .mlci/mlflow-ui.pid)" 2>/dev/null || true; rm -f .mlci/mlflow-ui.pid; \
		echo "MLflow UI stopped"; fi
	@if [ -f .mlci/mlflow-gateway.pid ]; then kill "$$(cat .mlci/mlflow-gateway.pid)" 2>/dev/null || true; \
		rm -f .mlci/mlflow-gateway.pid; echo "MLflow for containers stopped"; fi

# `machine` installs and starts what the tests need (Docker engine, docker-compose, Nginx, Chromium,
# wrk) on a fresh Debian machine as root, or says exactly what to install when it cannot.
# Every suite runs even when one fails, so one CI run shows every failure. Lint, the Groovy suite (a JVM)
# and the local base images (debootstrap, first run only) go in the background while the Python suites
# run; their output is printed when they are done. The time of each suite is printed at the end.
test: machine $(LINKED)
	@mkdir -p reports; status=0; start=$$SECONDS; \
	bash docker/base-image.sh all >reports/base-image.log 2>&1 & \
	( t=$$SECONDS; $(MAKE) --no-print-directory test-groovy >reports/groovy.log 2>&1; rc=$$?; \
	  echo "$$((SECONDS - t))" >reports/groovy.seconds; exit $$rc ) & groovy=$$!; \
	( t=$$SECONDS; $(MAKE) --no-print-directory lint >reports/lint.log 2>&1; rc=$$?; \
	  echo "$$((SECONDS - t))" >reports/lint.seconds; exit $$rc ) & lint=$$!; \
	t=$$SECONDS; $(MAKE) --no-print-directory test-python || status=1; python=$$((SECONDS - t)); \
	wait $$lint || status=1; echo "== lint (ran beside the Python suites)"; cat reports/lint.log; \
	wait $$groovy || status=1; echo "== Groovy suite (ran beside the Python suites)"; cat reports/groovy.log; \
	echo "== suite times: Python $${python} s; beside it: lint $$(cat reports/lint.seconds 2>/dev/null || echo ?) s, Groovy $$(cat reports/groovy.seconds 2>/dev/null || echo ?) s; make test $$((SECONDS - start)) s"; \
	exit $$status

machine:
	@bash .ci/setup-machine

# Coverage is gated per package (>= 90 % branch each): one well-covered package must not hide another.
# API processes started by the tests are measured too (coverage's subprocess patch, see setup.cfg).
COVERED := ml api dashboard
# Two workers (pytest-xdist, --dist loadgroup): every test that drives the Docker engine is one group, run
# in order on one worker; the other takes the browser, packaging and unit tests meanwhile (tests/conftest.py).
# The slowest 15 tests and each suite's summed time are printed at the end (docs/testing.md).
PYTEST_WORKERS ?= 2
test-python: $(LINKED)
	@rm -f .coverage .coverage.*
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=15 --cov=mlci --cov-branch --cov-report=term \
		--cov-report=xml:reports/coverage.xml --junitxml=reports/junit.xml tests/integration tests/packaging tests/unit
	@for pkg in $(COVERED); do \
		$(BIN)/coverage report --include="$$pkg/*" --fail-under=90 --format=total >/dev/null \
		&& echo "coverage $$pkg: $$($(BIN)/coverage report --include="$$pkg/*" --format=total) % (>= 90)" \
		|| { echo "coverage $$pkg: $$($(BIN)/coverage report --include="$$pkg/*" --format=total) % is under 90 %"; exit 1; }; \
	done

# ruff (lint + format check), mypy on the mlci package and import-linter's layer contracts (setup.cfg
# [importlinter]); `make format` rewrites in place. mypy and lint-imports read the package as installed
# (the editable link tree, build/__editable__.*/mlci); mypy's paths are shown as the repository's.
lint: $(LINKED)
	$(BIN)/ruff check ml api dashboard tests benchmarks requirements/compile.py resources/io/mlci/install_lock.py
	$(BIN)/ruff format --check ml api dashboard tests benchmarks requirements/compile.py resources/io/mlci/install_lock.py
	@set -o pipefail; $(BIN)/mypy -p mlci | sed -E 's#build/__editable__[^/]*/mlci/(api|dashboard)/#\1/#; s#build/__editable__[^/]*/mlci/#ml/#'
	$(BIN)/lint-imports --no-logo

format: $(STAMP)
	$(BIN)/ruff check --fix ml api dashboard tests benchmarks requirements/compile.py resources/io/mlci/install_lock.py
	$(BIN)/ruff format ml api dashboard tests benchmarks requirements/compile.py resources/io/mlci/install_lock.py

test-groovy:
	bash tests/groovy/run.sh

lock: $(LINKED)
	$(BIN)/python requirements/compile.py
	cp requirements/dev.txt resources/io/mlci/requirements.txt
	cp requirements/installer.txt resources/io/mlci/installer.txt

# The wheel teams install (pip install mlci==<version>): built from the sdist, so the sdist is checked
# too; no network (--no-isolation: setuptools, wheel and build come from the lock). It carries the
# Dockerfiles, router files and image locks (setup.py), so `mlci build` needs no mlci checkout.
DIST ?= dist
dist: $(LINKED)
	rm -f $(DIST)/mlci-*.whl $(DIST)/mlci-*.tar.gz
	@mkdir -p $(DIST); $(BIN)/python -m build --no-isolation --outdir $(DIST) . >$(DIST)/build.log 2>&1 \
		|| { cat $(DIST)/build.log; exit 1; }
	@echo "built $(DIST)/mlci-$$(cat resources/io/mlci/VERSION)-py3-none-any.whl and $(DIST)/mlci-$$(cat resources/io/mlci/VERSION).tar.gz"

clean:
	rm -rf $(VENV) .mlci reports .pytest_cache .coverage
