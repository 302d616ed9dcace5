"""The scikit-learn Pipeline described by `mlci.yaml`: preprocessing per feature type + estimator.

Everything the model sees goes through `model_frame`, so training, packaging and serving agree on
one input representation: numeric columns as float64 with NaN for missing, categorical columns as
strings with "" for missing (ONNX string tensors have no NaN, so "" is the missing marker there too).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, is_classifier, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlci.core.config import REGRESSION, Config, module_allowed
from mlci.core.errors import ConfigError
from mlci.learn.encoded import NEEDS_INDICES, LabelEncodedClassifier

MISSING_CATEGORY = ""


def load_estimator_class(path: str, allowed_modules: list[str]) -> type[BaseEstimator]:
    """The estimator class at `path`, imported only if its module is allowed (importing runs its code)."""
    module_name, _, class_name = path.rpartition(".")
    if not module_allowed(module_name, allowed_modules):
        raise ConfigError(
            f"model.estimator: module {module_name!r} is not in model.allowed_modules {allowed_modules}",
            hint="use a scikit-learn estimator, or add its package to model.allowed_modules if you trust its code",
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ConfigError(
            f"model.estimator: cannot import module {module_name!r}",
            hint="use a full import path such as sklearn.ensemble.RandomForestClassifier",
        ) from None
    cls = getattr(module, class_name, None)
    if not (inspect.isclass(cls) and issubclass(cls, BaseEstimator)):
        raise ConfigError(f"model.estimator: {path!r} is not a scikit-learn estimator class")
    return cls


def _require_probabilities(estimator: BaseEstimator, accepted: list[str]) -> None:
    # The gate (roc_auc, log_loss), the bundle's parity check and the API all need probabilities:
    # refuse before any training rather than fail after it. scikit-learn's `available_if` makes
    # hasattr exact (SVC has predict_proba only with probability=True).
    if hasattr(estimator, "predict_proba"):
        return
    name = type(estimator).__name__
    if "probability" in accepted:
        hint = f"set probability: true under model.params ({name} then calibrates probabilities)"
    else:
        hint = (
            "choose a classifier that gives probabilities, e.g. sklearn.linear_model.LogisticRegression "
            "(instead of RidgeClassifier) or sklearn.ensemble.RandomForestClassifier"
        )
    raise ConfigError(
        f"model.estimator: {name} with these model.params has no predict_proba; "
        "mlci needs class probabilities (gate metrics roc_auc and log_loss, the API's answers)",
        hint=hint,
    )


# Defaults mlci gives an estimator unless model.params sets them: LightGBM prints ~30 lines per fit.
QUIET = {"lightgbm": {"verbose": -1}, "xgboost": {"verbosity": 0}}


def accepted_parameters(cls: type[BaseEstimator]) -> list[str]:
    """The parameters an estimator class takes: its __init__'s, or, for one that takes **kwargs
    (XGBoost, LightGBM), the ones its get_params() lists."""
    signature = inspect.signature(cls.__init__).parameters
    names = [p for p in signature if p != "self" and signature[p].kind != inspect.Parameter.VAR_KEYWORD]
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in signature.values()):
        # A class that cannot be built without arguments keeps its signature's names.
        with contextlib.suppress(Exception):
            names = list(dict.fromkeys([*names, *cls().get_params(deep=False)]))
        names += [k for k in QUIET.get(cls.__module__.partition(".")[0], {}) if k not in names]
    return names


def build_estimator(config: Config) -> BaseEstimator:
    cls = load_estimator_class(config.model.estimator, config.model.allowed_modules)
    params = dict(config.model.params)
    accepted = accepted_parameters(cls)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"model.params: {cls.__name__} has no parameter(s) {', '.join(unknown)}",
            hint=f"valid parameters: {', '.join(accepted)}",
        )
    # Determinism: a randomised estimator without an explicit seed takes the split seed.
    if "random_state" in accepted and "random_state" not in params:
        params["random_state"] = config.split.seed
    package = cls.__module__.partition(".")[0]
    params = {**{k: v for k, v in QUIET.get(package, {}).items() if k in accepted}, **params}
    try:
        estimator = cls(**params)
        if hasattr(estimator, "_parameter_constraints"):  # scikit-learn's own check, before minutes of fitting
            estimator._validate_params()
    except (TypeError, ValueError) as error:
        raise ConfigError(f"model.params: {cls.__name__} rejects its parameters: {error}") from None
    _require_task(estimator, config)
    if f"{cls.__module__}.{cls.__name__}" in NEEDS_INDICES or config.model.estimator in NEEDS_INDICES:
        # XGBClassifier learns class indices only: taught on them, it answers with the class names.
        return LabelEncodedClassifier(estimator)
    return estimator


def _require_task(estimator: BaseEstimator, config: Config) -> None:
    """The estimator predicts what the task asks for: a number (regressor) or a class with probabilities."""
    name = type(estimator).__name__
    if config.task == REGRESSION:
        if not is_regressor(estimator):
            raise ConfigError(
                f"model.estimator: {name} is not a regressor and task is regression",
                hint="use a regressor (e.g. sklearn.ensemble.RandomForestRegressor, sklearn.linear_model.Ridge), "
                "or set task: classification if the target is a class",
            )
        return
    if not is_classifier(estimator):
        raise ConfigError(
            f"model.estimator: {name} is not a classifier and task is classification",
            hint="use a classifier (e.g. sklearn.linear_model.LogisticRegression), "
            "or set task: regression if the target is a number to predict",
        )
    _require_probabilities(estimator, accepted_parameters(type(estimator)))


def numeric_features(config: Config) -> list[str]:
    return [n for n, f in config.data.features.items() if f.type == "numeric"]


def categorical_features(config: Config) -> list[str]:
    return [n for n, f in config.data.features.items() if f.type == "categorical"]


def build_pipeline(config: Config) -> Pipeline:
    pre = config.model.preprocessing
    transformers = []
    if numeric := numeric_features(config):
        steps = [("impute", SimpleImputer(strategy=pre.numeric.impute))]
        if pre.numeric.scale:
            steps.append(("scale", StandardScaler()))
        transformers.append(("numeric", Pipeline(steps), numeric))
    if categorical := categorical_features(config):
        steps = [
            (
                "impute",
                SimpleImputer(strategy=pre.categorical.impute, missing_values=MISSING_CATEGORY, fill_value="missing"),
            )
        ]
        if pre.categorical.one_hot:
            steps.append(("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)))
        transformers.append(("categorical", Pipeline(steps), categorical))
    preprocess = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    return Pipeline([("preprocess", preprocess), ("model", build_estimator(config))])


def model_frame(frame: pd.DataFrame, config: Config) -> pd.DataFrame:
    """The feature columns, in config order, in the one representation the model accepts."""
    columns = {}
    for name, feature in config.data.features.items():
        column = frame[name]
        if feature.type == "numeric":
            columns[name] = pd.to_numeric(column, errors="raise").astype(np.float64)
        else:
            columns[name] = column.astype(object).where(column.notna(), MISSING_CATEGORY).astype(str)
    return pd.DataFrame(columns, index=frame.index)
