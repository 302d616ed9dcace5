"""The Models page's data: the MLflow registry's versions of the served model, read-only.

Reuses `ml.registry.versions` (versions newest first, with aliases and tags) and reads the primary
metric from the version tags `mlci train` writes (`mlci.primary_metric`, `mlci.metric.<name>`), so a
page load is one search, not one request per version. mlflow is imported only here, lazily: the
dashboard's other pages work in an image without it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ml.registry import redact

TRACKING_ENV = "MLFLOW_TRACKING_URI"
MODEL_NAME_ENV = "MLCI_MODEL_NAME"
MAX_VERSIONS = 50
HTTP_DEFAULTS = {  # fail in seconds, not after MLflow's minutes of retries
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}

HOW_TO_CONFIGURE = """\
The Models page reads the MLflow model registry, and no tracking server is configured for this dashboard.

Set `MLFLOW_TRACKING_URI` in the dashboard's environment and restart it, for example:

```
MLFLOW_TRACKING_URI=http://mlflow.internal:5000 mlci dashboard --api http://127.0.0.1:8080
MLFLOW_TRACKING_URI=sqlite:///$PWD/.mlci/mlflow.db mlci dashboard        # the embedded store of `mlci train`
```

Optionally set `MLCI_MODEL_NAME` (default: the name of the model the API serves), and
`MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD` if the server asks for them.
"""


class RegistryError(Exception):
    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass
class RegistryView:
    tracking_uri: str
    model_name: str
    primary_metric: str | None
    aliases: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


def tracking_uri(env: dict[str, str] | None = None) -> str | None:
    values = os.environ if env is None else env
    value = (values.get(TRACKING_ENV) or "").strip()
    return value or None


def model_name(api_name: str | None, env: dict[str, str] | None = None) -> str | None:
    values = os.environ if env is None else env
    return (values.get(MODEL_NAME_ENV) or "").strip() or api_name or None


def _float(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def load(uri: str, name: str) -> RegistryView:
    """Versions newest first: version, aliases, primary metric, author, commit, branch, date, run."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        from ml import registry
    except ImportError as error:
        raise RegistryError(
            f"the MLflow client is not installed in this dashboard ({error})",
            hint="install mlflow next to the dashboard (pip install mlflow) to see the registry",
        ) from None
    if urlparse(uri).scheme in ("http", "https"):
        import httpx

        try:
            httpx.get(uri.rstrip("/") + "/health", timeout=3.0)
        except httpx.HTTPError as error:
            raise RegistryError(
                f"the MLflow tracking server {redact(uri)} is unreachable ({type(error).__name__})",
                hint="check that it runs and that MLFLOW_TRACKING_URI points at it",
            ) from None
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        infos = registry.versions(client, name)[:MAX_VERSIONS]
        aliases = registry.alias_map(client, name)
    except MlflowException as error:
        raise RegistryError(
            f"MLflow at {redact(uri)} refused the request: {error.message}",
            hint="check MLFLOW_TRACKING_URI and the credentials",
        ) from None
    except Exception as error:  # noqa: BLE001 - connection errors come in many types; the page shows one line
        raise RegistryError(
            f"cannot read the MLflow registry at {redact(uri)} ({type(error).__name__}: {error})",
            hint="check that the tracking server runs and MLFLOW_TRACKING_URI points at it",
        ) from None
    primary = next((i.tags.get("mlci.primary_metric") for i in infos if i.tags.get("mlci.primary_metric")), None)
    rows = []
    for info in infos:
        metric_name = info.tags.get("mlci.primary_metric") or primary
        rows.append(
            {
                "version": int(info.version),
                "aliases": ", ".join(f"@{a}" for a in info.aliases),
                "metric": _float(info.tags.get(f"mlci.metric.{metric_name}")) if metric_name else None,
                "author": info.tags.get("mlci.author", ""),
                "commit": info.commit,
                "branch": info.tags.get("mlci.branch", ""),
                "created_at": info.tags.get("mlci.trained_at") or info.created_at,
                "gate": info.tags.get("mlci.gate.result", ""),
                "run_id": info.run_id,
            }
        )
    return RegistryView(tracking_uri=redact(uri), model_name=name, primary_metric=primary, aliases=aliases, rows=rows)
