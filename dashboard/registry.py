"""The Models page's data: the MLflow registry's versions of the served model, read-only.

Reads the versions (newest first) and the aliases straight from MLflow, and the primary metric from
the version tags `mlci train` writes (`mlci.primary_metric`, `mlci.metric.<name>`); the other test
metrics of each version (a regression's rmse, mae, r2…) come from their runs in one search, so a page
load is four requests, not one per version. It imports only mlci.contract (not the training tooling), so the dashboard
image carries only mlflow-skinny; mlflow is imported lazily: the other pages work without it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlci.contract import mlflow_reads
from mlci.core import env

TRACKING_ENV = "MLFLOW_TRACKING_URI"
MAX_VERSIONS = 50
TEST_PREFIX = "test_"  # `mlci train` logs the held-out metrics as test_<name>

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


DEPLOYED_WITHOUT_MLFLOW = """\
**This dashboard was deployed without a model registry.** It runs in the `{env}` environment's
container, and `mlci deploy` gave it no `MLFLOW_TRACKING_URI`: no http(s) tracking server was configured.

What it needs: an MLflow **tracking server** it can reach over HTTP from inside its Docker network
(the image carries the MLflow client only, so a `sqlite:///…` file such as the demo's `.mlci/mlflow.db`
cannot be read from it), passed as `MLFLOW_TRACKING_URI` in the container's environment.
Set `environments.{env}.dashboard_tracking_uri` (or `MLFLOW_TRACKING_URI` to an http(s) server) and
deploy again; `make demo` does this for the demo's store (`make mlflow-ui` serves it to containers).

Meanwhile, the same page on the host reads the demo's registry:

```
MLFLOW_TRACKING_URI=http://127.0.0.1:5000 mlci dashboard --api http://127.0.0.1:8080 --port 8502
```
"""


def not_configured(environ: Mapping[str, str] | None = None) -> str:
    """What the page says with no tracking URI: in a deployed container, why and what it needs."""
    deployed = env.ENV.get(environ) if env.ENV.is_set(environ) else ""  # set by mlci deploy on its container
    return DEPLOYED_WITHOUT_MLFLOW.format(env=deployed) if deployed else HOW_TO_CONFIGURE


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
    metrics: list[str] = field(default_factory=list)  # the other test metrics, each a key of the rows


def best_version(rows: list[dict[str, Any]], higher_is_better: bool | None) -> int | None:
    """The version with the best primary metric in its direction (the newest of equals); None without a
    direction or a score."""
    scored = [r for r in rows if isinstance(r.get("metric"), (int, float))]
    if higher_is_better is None or not scored:
        return None
    sign = 1 if higher_is_better else -1
    return max(scored, key=lambda r: (sign * r["metric"], r["version"]))["version"]


def _run_metrics(client: Any, run_ids: list[str]) -> dict[str, dict[str, float]]:
    """run id -> its test metrics (name without the prefix), from one search in the newest run's experiment;
    {} when MLflow cannot say (the page keeps the primary metric of the tags)."""
    ids = [r for r in run_ids if r]
    if not ids:
        return {}
    try:
        experiment = client.get_run(ids[0]).info.experiment_id
        quoted = ", ".join("'" + r.replace("'", "") + "'" for r in ids)
        runs = client.search_runs([experiment], filter_string=f"attributes.run_id IN ({quoted})", max_results=len(ids))
    except Exception:  # noqa: BLE001 - a deleted run, a refused search: the extra columns are optional
        return {}
    return {
        run.info.run_id: {
            k.removeprefix(TEST_PREFIX): float(v) for k, v in run.data.metrics.items() if k.startswith(TEST_PREFIX)
        }
        for run in runs
    }


def tracking_uri(environ: Mapping[str, str] | None = None) -> str | None:
    values = os.environ if environ is None else environ  # MLflow's own variable, read as MLflow reads it
    value = (values.get(TRACKING_ENV) or "").strip()
    return value or None


def model_name(api_name: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    return env.MODEL_NAME.get(environ) or api_name or None


def _missing_sqlite_file(uri: str) -> str | None:
    """The file a sqlite:/// URI names, when it does not exist: MLflow would create it, empty, and the
    page would say "no version yet" about a misspelt path. This page only reads."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    return path if path not in ("", ":memory:") and not Path(path).is_file() else None


def _has_sql_store() -> bool:
    """Whether MLflow can open a database here: the dashboard image has mlflow-skinny, without SQLAlchemy."""
    try:
        import sqlalchemy  # noqa: F401 - imported only to know it is there
    except ImportError:
        return False
    return True


def _float(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _row(mv: Any, tags: dict[str, str], metric_name: str | None, aliases: dict[str, str]) -> dict[str, Any]:
    """One line of the Versions table, from an MLflow ModelVersion and its tags."""
    created = datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(timespec="seconds")
    return {
        "version": int(mv.version),
        "aliases": ", ".join(f"@{a}" for a, v in sorted(aliases.items()) if v == str(mv.version)),
        "metric": _float(tags.get(f"mlci.metric.{metric_name}")) if metric_name else None,
        "author": tags.get("mlci.author", ""),
        "commit": tags.get("mlci.commit", "unknown"),
        "branch": tags.get("mlci.branch", ""),
        "created_at": tags.get("mlci.trained_at") or created,
        "gate": tags.get("mlci.gate.result", ""),
        "run_id": mv.run_id,
    }


def load(uri: str, name: str) -> RegistryView:
    """Versions newest first: version, aliases, primary metric, author, commit, branch, date, run."""
    mlflow_reads.apply_http_defaults()
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError as error:
        raise RegistryError(
            f"the MLflow client is not installed in this dashboard ({error})",
            hint="install mlflow next to the dashboard (pip install mlflow) to see the registry",
        ) from None
    if uri.startswith("sqlite:") and not _has_sql_store():
        raise RegistryError(
            f"this dashboard has the MLflow client only (mlflow-skinny), which cannot open {uri}",
            hint="start an MLflow tracking server on that store (make mlflow-ui, or mlflow server "
            "--backend-store-uri …) and set MLFLOW_TRACKING_URI to its http:// URL",
        )
    if missing := _missing_sqlite_file(uri):
        raise RegistryError(
            f"no MLflow database at {missing}",
            hint="check MLFLOW_TRACKING_URI: `mlci train` writes the embedded store to .mlci/mlflow.db in the project",
        )
    if urlparse(uri).scheme in ("http", "https"):
        import httpx

        try:
            httpx.get(uri.rstrip("/") + "/health", timeout=3.0)
        except httpx.HTTPError as error:
            raise RegistryError(
                f"the MLflow tracking server {mlflow_reads.redact(uri)} is unreachable ({type(error).__name__})",
                hint="check that it runs and that MLFLOW_TRACKING_URI points at it",
            ) from None
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        aliases = mlflow_reads.alias_map(client, name)
        found = client.search_model_versions(
            f"name = '{name}'", max_results=MAX_VERSIONS, order_by=["version_number DESC"]
        )
    except MlflowException as error:
        raise RegistryError(
            f"MLflow at {mlflow_reads.redact(uri)} refused the request: {error.message}",
            hint="check MLFLOW_TRACKING_URI and the credentials",
        ) from None
    except Exception as error:  # noqa: BLE001 - connection errors come in many types; the page shows one line
        raise RegistryError(
            f"cannot read the MLflow registry at {mlflow_reads.redact(uri)} ({type(error).__name__}: {error})",
            hint="check that the tracking server runs and MLFLOW_TRACKING_URI points at it",
        ) from None
    versions = sorted(found, key=lambda mv: int(mv.version), reverse=True)
    tags = [dict(mv.tags or {}) for mv in versions]
    primary = next((t["mlci.primary_metric"] for t in tags if t.get("mlci.primary_metric")), None)
    rows = [_row(mv, t, t.get("mlci.primary_metric") or primary, aliases) for mv, t in zip(versions, tags)]
    by_run = _run_metrics(client, [str(mv.run_id or "") for mv in versions])
    fixed = set(rows[0]) if rows else set()  # the table's own columns
    names: list[str] = []
    for row in rows:
        for metric, value in by_run.get(row["run_id"], {}).items():
            if metric == primary or metric in fixed:
                continue
            if metric not in names:
                names.append(metric)
            row[metric] = value
    return RegistryView(
        tracking_uri=mlflow_reads.redact(uri),
        model_name=name,
        primary_metric=primary,
        aliases=aliases,
        rows=rows,
        metrics=names,
    )
