# mlci — the two commands a newcomer needs: `make demo` and `make test`.
# Both create the virtualenv from the lock file themselves (python3.11 is the only prerequisite).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements/dev.txt
STAMP  := $(VENV)/.installed
export MLFLOW_DISABLE_TELEMETRY ?= true

.PHONY: demo test test-python test-groovy venv lock clean help

help:
	@echo "make demo   run the main job on the demo project (train, gate, status)"
	@echo "make test   run every test (Python and Groovy)"
	@echo "make lock   recompile requirements/*.txt from setup.cfg"

venv: $(STAMP)

# The venv is rebuilt whenever the lock or the package metadata changes.
$(STAMP): $(LOCK) setup.cfg pyproject.toml
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || .ci/bootstrap-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

demo: $(STAMP)
	$(BIN)/mlci train
	$(BIN)/mlci gate
	$(BIN)/mlci status

test: test-python test-groovy

test-python: $(STAMP)
	$(BIN)/pytest --cov=ml --cov-branch --cov-report=term --cov-report=xml:reports/coverage.xml \
		--cov-fail-under=90 --junitxml=reports/junit.xml

test-groovy:
	bash tests/groovy/run.sh

lock: $(STAMP)
	$(BIN)/python requirements/compile.py

clean:
	rm -rf $(VENV) .mlci reports .pytest_cache .coverage
