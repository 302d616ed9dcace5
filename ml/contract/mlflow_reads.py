"""The MLflow reads both sides need: the training tooling (mlci.track) and the dashboard's Models page.

One definition of each, so the two cannot drift apart: how a tracking URI is shown (its password
redacted), how long the MLflow client may wait before a command or a page says the server is down,
and the alias lookup that reads "no such model" as "no alias yet". mlflow is imported lazily: the API
image has no MLflow at all and the dashboard image only mlflow-skinny.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse, urlunparse

# MLflow's client retries for minutes by default; a CI step or a page load should fail fast and say why.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    # No telemetry from CI agents or dashboards (and no network to send it to on closed ones).
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # Any MLflow loader reached by mistake refuses to deserialize (pickle, and skops with the version's
    # own trusted list) instead of running a version's code (mlci.track.model_loading loads models).
    "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
    # libpq (a postgresql:// tracking URI) waits for the OS's TCP timeout by default: minutes.
    "PGCONNECT_TIMEOUT": "5",
}
# What MLflow answers for a model or version that does not exist (file, SQL and REST stores differ).
MISSING_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})

# Version tags `mlci train` and `mlci gate` write and the Models page reads.
TAG_PRIMARY_METRIC = "mlci.primary_metric"
TAG_METRIC_PREFIX = "mlci.metric."
TAG_AUTHOR = "mlci.author"
TAG_COMMIT = "mlci.commit"
TAG_BRANCH = "mlci.branch"
TAG_TRAINED_AT = "mlci.trained_at"
TAG_GATE_RESULT = "mlci.gate.result"


def apply_http_defaults(environ: Any = None) -> None:
    """Set the defaults above where the operator set nothing (their own values win)."""
    target = os.environ if environ is None else environ
    for key, value in HTTP_DEFAULTS.items():
        target.setdefault(key, value)


def redact(uri: str) -> str:
    """A tracking URI without the password a user may have put in it (for logs, reports, pages).

    The host part is kept as written (case, IPv6 brackets, port)."""
    parts = urlparse(uri)
    if not parts.password:
        return uri
    return urlunparse(parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"))


def is_missing(error: Exception) -> bool:
    """Whether an MlflowException says the model or version does not exist."""
    return getattr(error, "error_code", "") in MISSING_CODES


def alias_map(client: Any, name: str) -> dict[str, str]:
    """alias -> version, empty while the model is not registered (no alias yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return {alias: str(version) for alias, version in client.get_registered_model(name).aliases.items()}
    except MlflowException as error:
        if is_missing(error):
            return {}
        raise
