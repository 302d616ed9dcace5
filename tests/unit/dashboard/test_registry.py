"""The Models page against a real MLflow store: the primary metric over versions with each version's
aliases on the chart, and what it says when it cannot read a registry (a deployed dashboard without
MLFLOW_TRACKING_URI, a sqlite URI in an image with the MLflow client only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlci.dashboard import registry


def test_the_version_chart_labels_each_version_with_its_aliases(api_v1, registry_store, open_app, texts):
    at = open_app(api_v1.url, "models", MLFLOW_TRACKING_URI=str(registry_store["uri"]))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["@production"] == "v2" and metrics["@staging"] == "v3" and metrics["@candidate"] == "v3"
    assert metrics["API serves"] == "v1"
    assert "roc_auc over versions" in texts(at)
    (chart,) = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert '"type": "text"' in chart and '"field": "aliases"' in chart  # the labels above the points
    assert '"type": "line"' in chart and '"field": "roc_auc"' in chart
    rows = at.dataframe[0].value.set_index("version")["aliases"].to_dict()
    assert rows == {3: "@candidate, @staging", 2: "@production", 1: ""}


def test_a_deployed_dashboard_without_a_tracking_uri_says_what_it_needs(api_v1, open_app):
    at = open_app(api_v1.url, "models", MLCI_ENV="production")
    (info,) = [i.value for i in at.info]
    assert "deployed without a model registry" in info and "`production` environment" in info
    assert "MLFLOW_TRACKING_URI" in info and "tracking server" in info
    assert "mlci dashboard --api http://127.0.0.1:8080" in info


def test_a_local_dashboard_without_a_tracking_uri_says_how_to_configure_it(api_v1, open_app):
    at = open_app(api_v1.url, "models")
    assert [i.value.strip() for i in at.info] == [registry.HOW_TO_CONFIGURE.strip()]


def test_a_sqlite_store_without_sqlalchemy_names_the_fix(api_v1, registry_store, open_app, monkeypatch, texts):
    """The dashboard image carries mlflow-skinny (no SQLAlchemy): a sqlite URI cannot work there."""
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # what `import sqlalchemy` meets in that image
    at = open_app(api_v1.url, "models", MLFLOW_TRACKING_URI=str(registry_store["uri"]))
    shown = texts(at)
    assert "The model registry is unavailable" in shown and "MLflow client only (mlflow-skinny)" in shown
    assert "set MLFLOW_TRACKING_URI to its http:// URL" in shown


# -- registry --------------------------------------------------------------------------------------
def test_registry_reads_versions_aliases_and_metric(registry_store):
    view = registry.load(registry_store["uri"], registry_store["name"])
    assert view.primary_metric == "roc_auc"
    assert view.aliases == {"production": "2", "staging": "3", "candidate": "3"}
    assert [(r["version"], r["metric"], r["author"]) for r in view.rows] == [
        (3, 0.962, "carol"),
        (2, 0.973, "bob"),
        (1, 0.951, "alice"),
    ]


def test_registry_settings_from_the_environment():
    assert registry.tracking_uri({}) is None and registry.tracking_uri({"MLFLOW_TRACKING_URI": " "}) is None
    assert registry.model_name("from-api", {}) == "from-api"
    assert registry.model_name("from-api", {"MLCI_MODEL_NAME": "set"}) == "set"


ROOT = Path(__file__).resolve().parents[3]


def test_registry_without_the_mlflow_client_says_what_to_install(tmp_path):
    """The dashboard's image without mlflow: a clean interpreter whose import path lost site-packages
    (where mlflow lives) before the dashboard is imported."""
    code = (
        "import sys\n"
        "sys.path[:] = [p for p in sys.path if 'site-packages' not in p]\n"
        "from dashboard import registry\n"
        "try:\n"
        f"    registry.load('sqlite:///{tmp_path}/mlflow.db', 'm')\n"
        "except registry.RegistryError as error:\n"
        "    print(error.message); print(error.hint)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    message, hint = done.stdout.strip().splitlines()
    assert message.startswith("the MLflow client is not installed in this dashboard")
    assert "pip install mlflow" in hint
    assert not (tmp_path / "mlflow.db").exists()
