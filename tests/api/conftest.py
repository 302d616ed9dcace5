"""Shared fixtures: real pipelines fitted on the demo and loans data, exported to bundles (no MLflow)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from api.app import create_app
from api.settings import Settings
from ml import config as config_module
from ml.bundle import export_bundle
from ml.config import Config
from ml.model import build_pipeline, model_frame

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "mlci.yaml"
LOANS_CONFIG = ROOT / "tests" / "data" / "loans.yaml"


@dataclass
class Fitted:
    config: Config
    pipeline: Pipeline
    test_frame: pd.DataFrame  # model_frame of the held-out rows


def with_estimator(config: Config, estimator: str, params: dict | None = None, **package) -> Config:
    model = config.model.model_copy(update={"estimator": estimator, "params": params or {}})
    update: dict = {"model": model}
    if package:
        update["package"] = config.package.model_copy(update=package)
    return config.model_copy(update=update)


def fit(config: Config) -> Fitted:
    frame = pd.read_csv(config.data_path, delimiter=config.data.delimiter)
    features = model_frame(frame, config)
    target = frame[config.data.target].astype(str)
    x_train, x_test, y_train, _ = train_test_split(
        features, target, test_size=config.split.test_size, random_state=config.split.seed, stratify=target
    )
    return Fitted(config, build_pipeline(config).fit(x_train, y_train), x_test)


def metadata(config: Config, version: str = "7") -> dict:
    return {
        "name": config.model_name,
        "version": version,
        "run_id": "0123456789abcdef",
        "commit": "abc1234",
        "data": {
            "sha256": "f" * 64,
            "rows": 1,
            "columns": len(config.data.features) + 1,
            "path": str(config.data.path),
        },
        "metrics": {config.metrics.primary: 0.99},
        "trained_at": "2026-01-01T00:00:00+00:00",
        "trained_by": "tests",
        "primary_metric": config.metrics.primary,
    }


@pytest.fixture(scope="session")
def demo_config() -> Config:
    return config_module.load(DEMO_CONFIG)


@pytest.fixture(scope="session")
def loans_config() -> Config:
    return config_module.load(LOANS_CONFIG)


@pytest.fixture(scope="session")
def demo_fitted(demo_config) -> Fitted:
    return fit(demo_config)


@pytest.fixture(scope="session")
def loans_fitted(loans_config) -> Fitted:
    return fit(loans_config)


@pytest.fixture(scope="session")
def demo_bundle(demo_fitted, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "demo"
    export_bundle(demo_fitted.pipeline, demo_fitted.config, metadata(demo_fitted.config), demo_fitted.test_frame, out)
    return out


@pytest.fixture(scope="session")
def loans_bundle(loans_fitted, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "loans"
    export_bundle(
        loans_fitted.pipeline, loans_fitted.config, metadata(loans_fitted.config, "3"), loans_fitted.test_frame, out
    )
    return out


@pytest.fixture(scope="module")
def demo_client(demo_bundle):
    app = create_app(demo_bundle, Settings(colour="blue", environment="staging", max_batch=1000))
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def loans_client(loans_bundle):
    app = create_app(loans_bundle, Settings(colour="green", environment="production", max_batch=5, max_body_bytes=4096))
    with TestClient(app) as client:
        yield client


class Helpers:
    root = ROOT
    fit = staticmethod(fit)
    metadata = staticmethod(metadata)
    with_estimator = staticmethod(with_estimator)


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    """The module-level helpers, as a fixture (test modules do not import conftest)."""
    return Helpers
