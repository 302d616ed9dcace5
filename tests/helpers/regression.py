"""A regression model for the dashboard tests: the loans data with `debt_ratio` as the number to predict
(categoricals and missing values on the way), a real bundle with the training target's facts, and an
MLflow store holding three versions of it tagged as `mlci train` tags them (rmse primary, lower is better).
The fixtures that build them once per session are in tests/fixtures/dashboard.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
LOANS_CONFIG = ROOT / "tests" / "data" / "loans.yaml"
LOANS_CSV = ROOT / "tests" / "data" / "loans.csv"
TARGET = "debt_ratio"
MODEL_NAME = "loans-debt-ratio"
VERSION = "5"
# rmse, mae, r2 of three registered versions: v2 has the lowest rmse, the best (lower is better).
REGISTRY_METRICS = [
    {"rmse": 0.141, "mae": 0.112, "r2": 0.18},
    {"rmse": 0.127, "mae": 0.101, "r2": 0.31},
    {"rmse": 0.135, "mae": 0.104, "r2": 0.26},
]


DASHBOARD_PARAMS = {"n_estimators": 10, "max_depth": 5, "random_state": 0, "n_jobs": 1}


def regression_config(
    estimator: str = "sklearn.ensemble.RandomForestRegressor",
    params: dict | None = None,
    allowed_modules: list[str] | None = None,
):
    """loans.yaml as a regression: debt_ratio from region, employment, income and age; rmse primary."""
    from mlci.core import config as config_module

    loans = config_module.load(LOANS_CONFIG)
    features = {k: v for k, v in loans.data.features.items() if k != TARGET}
    model = {"estimator": estimator, "params": DASHBOARD_PARAMS if params is None else params}
    if allowed_modules is not None:
        model["allowed_modules"] = allowed_modules
    return loans.model_copy(
        update={
            "task": "regression",
            "data": loans.data.model_copy(update={"target": TARGET, "features": features}),
            "model": loans.model.model_copy(update=model),
            "metrics": loans.metrics.model_copy(update={"primary": "rmse"}),
        }
    )


def fit_regression(config, test_size: float = 0.25):
    """The config's pipeline fitted on loans' training rows: (pipeline, held-out model frame, held-out
    target, training model frame, training target)."""
    from sklearn.model_selection import train_test_split

    from mlci.learn.model import build_pipeline, model_frame

    frame = pd.read_csv(LOANS_CSV)
    x = model_frame(frame, config)
    y = frame[TARGET].astype(float)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_size, random_state=1)
    return build_pipeline(config).fit(x_train, y_train), x_test, y_test, x_train, y_train


def make_regression_bundle(out: Path) -> Path:
    """Fit, score on the held-out rows and export with the training target (so metadata.json has `target`)."""
    from mlci.ship.export import export_bundle

    config = regression_config()
    frame = pd.read_csv(LOANS_CSV)
    pipeline, x_test, y_test, x_train, y_train = fit_regression(config)
    error = pipeline.predict(x_test) - y_test.to_numpy()
    rmse = float(np.sqrt(np.mean(error**2)))
    metadata = {
        "name": MODEL_NAME,
        "version": VERSION,
        "run_id": "run5" + "0" * 28,
        "commit": "5555555eeee",
        "data": {"sha256": "5" * 64, "rows": len(frame), "columns": len(frame.columns), "path": "loans.csv"},
        "metrics": {
            "rmse": rmse,
            "mae": float(np.mean(np.abs(error))),
            "r2": float(1 - np.sum(error**2) / np.sum((y_test - y_test.mean()) ** 2)),
        },
        "trained_at": "2026-05-01T12:00:00+00:00",
        "trained_by": "erin",
        "primary_metric": "rmse",
    }
    export_bundle(pipeline, config, metadata, x_test, out, training_frame=x_train, training_target=y_train)
    return out


def regression_csv(rows: int) -> bytes:
    """Real loans rows: the four features, plus debt_ratio and approved (kept in the results, not sent)."""
    return pd.read_csv(LOANS_CSV).head(rows).to_csv(index=False).encode()


def make_regression_registry(root: Path) -> dict[str, object]:
    """A SQLite MLflow store with three versions of the regression, each run logging test_rmse, test_mae and
    test_r2 and each version tagged with the primary metric, as `mlci train` does."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(MODEL_NAME, artifact_location=(root / "artifacts").as_uri())
    client.create_registered_model(MODEL_NAME)
    for i, metrics in enumerate(REGISTRY_METRICS, start=1):
        run = client.create_run(experiment)
        for name, value in metrics.items():
            client.log_metric(run.info.run_id, f"test_{name}", value)
        client.set_terminated(run.info.run_id)
        client.create_model_version(
            MODEL_NAME,
            source=f"{run.info.artifact_uri}/model",
            run_id=run.info.run_id,
            tags={
                "mlci.commit": f"{i}{i}{i}fedcba",
                "mlci.author": "erin",
                "mlci.primary_metric": "rmse",
                "mlci.metric.rmse": repr(metrics["rmse"]),
                "mlci.trained_at": f"2026-0{i}-02T12:00:00+00:00",
            },
        )
    client.set_registered_model_alias(MODEL_NAME, "production", "1")
    client.set_registered_model_alias(MODEL_NAME, "staging", "3")
    return {"uri": uri, "name": MODEL_NAME, "metrics": REGISTRY_METRICS}
