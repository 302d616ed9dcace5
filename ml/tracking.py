"""The MLflow connection: the system of record for runs, model versions and aliases.

Embedded default: SQLite under `.mlci/` with artifacts beside it. `MLFLOW_TRACKING_URI` points at
a tracking server instead; it is checked up front so an unreachable server fails in seconds, not
after MLflow's default retries (minutes).
"""

from __future__ import annotations

import logging
import os
import warnings
from urllib.parse import urlparse

import httpx

from ml.config import Config
from ml.errors import Unreachable

# MLflow's client retries for minutes by default; a CI step should fail fast and say why.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    # No telemetry from CI agents (and no network to send it to on closed ones).
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
PREFLIGHT_TIMEOUT = 5.0


def _quiet() -> None:
    for name in ("alembic", "mlflow", "mlflow.store", "mlflow.tracking", "mlflow.models"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"mlflow\..*")
    warnings.filterwarnings("ignore", category=UserWarning, message=r".*(Hint|signature|pip).*")


def is_remote(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https")


def preflight(uri: str) -> None:
    """Fail within seconds, with the URI and what to check, when a tracking server does not answer."""
    if not is_remote(uri):
        return
    try:
        httpx.get(uri.rstrip("/") + "/health", timeout=PREFLIGHT_TIMEOUT)
    except httpx.HTTPError as error:
        raise Unreachable(
            f"MLflow tracking server {uri} is unreachable ({type(error).__name__}: {error})",
            hint="check MLFLOW_TRACKING_URI and that the server runs (mlflow server …); "
            "unset it to use the embedded store",
        ) from None


def connect(config: Config):
    """Configure MLflow for this project and return a client (imported here: mlflow is slow to import)."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    _quiet()
    uri = config.tracking_uri
    preflight(uri)
    if uri.startswith("sqlite:"):
        config.state_dir.mkdir(parents=True, exist_ok=True)
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(client, config: Config) -> str:
    experiment = client.get_experiment_by_name(config.experiment_name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if not is_remote(config.tracking_uri):
        # Keep artifacts with the embedded store, not in ./mlruns of whatever folder mlci ran from.
        location = (config.state_dir / "artifacts").resolve().as_uri()
    return client.create_experiment(config.experiment_name, artifact_location=location)
