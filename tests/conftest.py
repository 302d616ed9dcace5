"""Shared by every Python suite: a clean, offline environment for MLflow and the CLI."""

import os

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

# Variables a developer's shell or a Jenkins agent may set that would leak into the tests.
LEAKY = ("MLFLOW_TRACKING_URI", "MLCI_CONFIG", "BUILD_USER_ID", "BUILD_URL", "BUILD_NUMBER", "JOB_NAME",
         "BRANCH_NAME", "GIT_BRANCH", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in LEAKY:
        monkeypatch.delenv(name, raising=False)
