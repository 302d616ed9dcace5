"""LightGBM and XGBoost through mlci's packaging: ONNX with parity enforced, loaded on the agent only by
name (skops, no pickle), served by the API without either library."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mlci.contract.bundle import load_bundle
from mlci.core.errors import BadInput, ConfigError
from mlci.learn.encoded import LabelEncodedClassifier
from mlci.learn.model import build_estimator
from mlci.ship.export import export_bundle, onnx_columns
from mlci.track import model_loading
from tests.unit.ship.test_export import regression_fitted

BOOSTING = ["sklearn", "lightgbm", "xgboost"]


def boosted(config, estimator: str, params: dict | None = None):
    model = config.model.model_copy(
        update={"allowed_modules": BOOSTING, "estimator": estimator, "params": params or {"n_estimators": 40}}
    )
    return config.model_copy(update={"model": model})


@pytest.mark.parametrize(
    ("estimator", "precision", "bound"),
    [
        # LightGBM computes in float64: mlci's float64 converter follows it to rounding.
        ("lightgbm.LGBMRegressor", "float64", 1e-9),
        # XGBoost computes in float32: float64 preprocessing, then the float32 trees (debt ratios ~0.3).
        ("xgboost.XGBRegressor", "float64 preprocessing, float32 estimator", 1e-5),
    ],
)
def test_boosted_regressors_ship_as_onnx_within_the_enforced_tolerance(
    helpers, loans_config, tmp_path, estimator, precision, bound
):
    config, pipeline, frame = regression_fitted(estimator, {"n_estimators": 40}, BOOSTING)
    summary = export_bundle(pipeline, config, helpers.metadata(config), frame, tmp_path / "b")
    assert summary["format"] == "onnx" and summary["precision"] == precision
    values, _ = load_bundle(tmp_path / "b").predict(onnx_columns(frame, config))
    measured = float(np.max(np.abs(np.array(values) - pipeline.predict(frame))))
    assert measured <= bound and summary["parity"]["max_abs_prediction_diff"] == pytest.approx(measured, abs=1e-15)
    print(f"{estimator}: max |ONNX - model| {measured:.3g} over {len(frame)} rows ({precision})")


@pytest.mark.parametrize(
    ("estimator", "precision", "bound"),
    [
        ("lightgbm.LGBMClassifier", "float64", 1e-12),
        ("xgboost.XGBClassifier", "float64 preprocessing, float32 estimator", 1e-5),
    ],
)
def test_boosted_classifiers_keep_their_class_names_and_parity(
    helpers, loans_config, tmp_path, estimator, precision, bound
):
    fitted = helpers.fit(boosted(loans_config, estimator))
    model = fitted.pipeline.steps[-1][1]
    # XGBoost learns class indices only: mlci teaches it the indices and answers with the names.
    assert isinstance(model, LabelEncodedClassifier) == estimator.startswith("xgboost")
    assert list(fitted.pipeline.classes_) == ["no", "yes"]
    summary = export_bundle(
        fitted.pipeline, fitted.config, helpers.metadata(fitted.config), fitted.test_frame, tmp_path / "b"
    )
    assert summary["precision"] == precision and summary["classes"] == ["no", "yes"]
    labels, probabilities = load_bundle(tmp_path / "b").predict(onnx_columns(fitted.test_frame, fitted.config))
    assert labels == list(fitted.pipeline.predict(fitted.test_frame))
    measured = float(np.max(np.abs(probabilities - fitted.pipeline.predict_proba(fitted.test_frame))))
    assert measured <= bound
    print(f"{estimator}: max |ONNX - model| probability {measured:.3g} ({precision})")


def test_a_boosted_model_is_loaded_by_name_on_the_agent_and_never_falls_back_to_the_api(
    helpers, loans_config, tmp_path
):
    import skops.io as sio

    fitted = helpers.fit(boosted(loans_config, "xgboost.XGBClassifier"))
    path = tmp_path / "model.skops"
    path.write_bytes(sio.dumps(fitted.pipeline))
    loaded = model_loading.load_skops(path, "test v1")
    assert list(loaded.predict(fitted.test_frame)) == list(fitted.pipeline.predict(fitted.test_frame))
    # The serving side's allow-list has neither library: a boosted model ships as ONNX or not at all.
    config = fitted.config.model_copy(
        update={
            "package": fitted.config.package.model_copy(
                update={"parity_tolerance": 1e-300, "allow_sklearn_fallback": True}
            )
        }
    )
    with pytest.raises(BadInput) as refused:
        export_bundle(fitted.pipeline, config, helpers.metadata(config), fitted.test_frame, tmp_path / "b")
    assert "xgboost.core.Booster" in refused.value.message and not (tmp_path / "b").exists()


def test_a_conversion_off_by_more_than_the_tolerance_is_exit_2_with_the_measured_difference(
    helpers, loans_config, tmp_path
):
    config, pipeline, frame = regression_fitted("xgboost.XGBRegressor", {"n_estimators": 40}, BOOSTING)
    config = config.model_copy(update={"package": config.package.model_copy(update={"parity_tolerance": 1e-12})})
    with pytest.raises(BadInput) as refused:
        export_bundle(pipeline, config, helpers.metadata(config), frame, tmp_path / "b")
    assert refused.value.exit_code == 2
    assert "XGBRegressor converts in float32 only" in " ".join(refused.value.details)
    assert "the closest conversion differs by up to" in refused.value.hint
    assert (
        "a boosted model ships as ONNX only" in refused.value.hint
        and "allow_sklearn_fallback" not in refused.value.hint
    )


def test_the_api_serves_a_lightgbm_bundle_without_lightgbm(helpers, loans_config, tmp_path):
    fitted = helpers.fit(boosted(loans_config, "lightgbm.LGBMClassifier"))
    export_bundle(fitted.pipeline, fitted.config, helpers.metadata(fitted.config), fitted.test_frame, tmp_path / "b")
    code = (
        "import sys, json; sys.modules['lightgbm'] = sys.modules['xgboost'] = sys.modules['sklearn'] = None\n"
        "from mlci.contract.bundle import load_bundle\n"
        f"b = load_bundle({str(tmp_path / 'b')!r}); print(json.dumps(b.classes))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["no", "yes"]


def test_boosting_parameters_are_checked_like_scikit_learns(loans_config):
    with pytest.raises(ConfigError) as unknown:
        build_estimator(boosted(loans_config, "xgboost.XGBClassifier", {"n_estimator": 10}))
    assert "has no parameter(s) n_estimator" in unknown.value.message and "n_estimators" in unknown.value.hint
    quiet = build_estimator(boosted(loans_config, "lightgbm.LGBMClassifier", {"n_estimators": 5}))
    assert quiet.get_params()["verbose"] == -1 and quiet.get_params()["random_state"] == loans_config.split.seed
    with pytest.raises(ConfigError, match=r"is not in model\.allowed_modules"):
        build_estimator(
            loans_config.model_copy(
                update={"model": loans_config.model.model_copy(update={"estimator": "lightgbm.LGBMClassifier"})}
            )
        )
