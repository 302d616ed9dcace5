"""Held-out split and the task's metrics (classification or regression), shared by training and the gate.

The gate must score the candidate and production on the same rows as training held out, so the
split lives here, driven only by the config (test fraction and seed) and the data.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from mlci.core.config import CLASSIFICATION_METRICS, REGRESSION, REGRESSION_METRICS, TASK_METRICS, Config
from mlci.core.errors import ConfigError, DataError
from mlci.learn.data import Dataset
from mlci.learn.model import model_frame


@dataclass(frozen=True)
class Split:
    x_train: pd.DataFrame
    x_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def target(frame: pd.DataFrame, config: Config) -> pd.Series:
    """The target as the model learns it: class names (strings) or numbers (float64) for a regression."""
    y = frame[config.data.target]
    if config.task == REGRESSION:
        return pd.to_numeric(y, errors="raise").astype(np.float64)
    return y.astype(str)


def holdout(dataset: Dataset, config: Config) -> Split:
    x = model_frame(dataset.frame, config)
    y = target(dataset.frame, config)
    # Classes keep their shares in both sets; a regression's target is split at random.
    stratify = None if config.task == REGRESSION else y
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=config.split.test_size, random_state=config.split.seed, stratify=stratify
        )
    except ValueError as error:
        raise DataError(
            f"cannot split the data into train and test sets: {error}",
            hint="add data or change split.test_size"
            + ("" if config.task == REGRESSION else " (each class needs at least two rows)"),
        ) from None
    return Split(x_train, x_test, y_train, y_test)


def positive_label(classes: np.ndarray, config: Config) -> str:
    wanted = config.metrics.positive_label
    if wanted is not None:
        if wanted not in classes:
            raise DataError(
                f"metrics.positive_label {wanted!r} is not a class of the target (classes: {list(classes)})"
            )
        return wanted
    return str(sorted(classes)[-1])


def score(model, x: pd.DataFrame, y: pd.Series, config: Config) -> dict[str, float]:
    """Every metric mlci knows for the task, for a fitted model on (x, y)."""
    if config.task == REGRESSION:
        return score_regression(y.to_numpy(dtype=np.float64), np.asarray(model.predict(x), dtype=np.float64))
    return score_classification(model, x, y, config)


def score_regression(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """rmse, mae, median_ae, mape, r2 and explained_variance of predictions against actual values."""
    result = {
        "rmse": math.sqrt(skm.mean_squared_error(actual, predicted)),
        "mae": skm.mean_absolute_error(actual, predicted),
        "median_ae": skm.median_absolute_error(actual, predicted),
        # scikit-learn's: |error| / max(|actual|, machine epsilon), so a zero target gives a huge, finite share.
        "mape": skm.mean_absolute_percentage_error(actual, predicted),
        "r2": skm.r2_score(actual, predicted) if len(actual) > 1 else float("nan"),
        "explained_variance": skm.explained_variance_score(actual, predicted) if len(actual) > 1 else float("nan"),
    }
    assert set(result) == set(REGRESSION_METRICS)
    return {k: float(v) for k, v in result.items()}


def score_classification(model, x: pd.DataFrame, y: pd.Series, config: Config) -> dict[str, float]:
    """Every classification metric mlci knows, for a fitted classifier on (x, y)."""
    classes = model.classes_
    predicted = model.predict(x)
    proba = model.predict_proba(x)
    binary = len(classes) == 2
    average = {"average": "binary", "pos_label": positive_label(classes, config)} if binary else {"average": "macro"}
    result = {
        "accuracy": skm.accuracy_score(y, predicted),
        "balanced_accuracy": skm.balanced_accuracy_score(y, predicted),
        "f1": skm.f1_score(y, predicted, zero_division=0, **average),
        "precision": skm.precision_score(y, predicted, zero_division=0, **average),
        "recall": skm.recall_score(y, predicted, zero_division=0, **average),
        "log_loss": skm.log_loss(y, proba, labels=classes),
    }
    if len(set(y)) < 2:
        result["roc_auc"] = float("nan")
    elif binary:
        positive = list(classes).index(positive_label(classes, config))
        result["roc_auc"] = skm.roc_auc_score(y == classes[positive], proba[:, positive])
    else:
        result["roc_auc"] = skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
    assert set(result) == set(CLASSIFICATION_METRICS)
    return {k: float(v) for k, v in result.items()}


PER_CLASS_METRICS = ("precision", "recall", "f1")


def per_class(model, x: pd.DataFrame, y: pd.Series) -> dict[str, dict[str, float]]:
    """A classifier's precision, recall and f1 for each class on (x, y), and its support (rows), by class."""
    classes = [str(c) for c in model.classes_]
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, model.predict(x), labels=model.classes_, zero_division=0
    )
    return {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": float(n)}
        for name, p, r, f, n in zip(classes, precision, recall, f1, support)
    }


def metric_key(metric: str, label: str) -> str:
    """An MLflow metric name for a class's metric: letters, digits and _-./ only (others become _)."""
    return f"{metric}_class_" + re.sub(r"[^A-Za-z0-9_\-./ ]", "_", label)[:200]


def fit(pipeline, x: pd.DataFrame, y: pd.Series, config: Config):
    """Fit the pipeline; the estimator's own refusal of its parameters is a config error.

    Some parameter combinations pass scikit-learn's parameter validation and are refused only by
    fit (LogisticRegression with penalty l1 and solver lbfgs): say so as a config problem.
    """
    try:
        return pipeline.fit(x, y)
    except (ValueError, TypeError) as error:
        raise ConfigError(
            f"model.params: {config.model.estimator} refused to fit with {config.model.params}: {error}",
            hint="change model.params (or model.estimator) as the estimator's message says, then run again",
        ) from None


def _folds(split: Split, config: Config) -> list[tuple[np.ndarray, np.ndarray]]:
    kind = KFold if config.task == REGRESSION else StratifiedKFold
    folds = kind(n_splits=config.split.cv_folds, shuffle=True, random_state=config.split.seed)
    try:
        return list(folds.split(split.x_train, split.y_train))
    except ValueError as error:
        raise DataError(
            f"cannot cross-validate with {config.split.cv_folds} folds: {error}",
            hint="lower split.cv_folds or add rows" + ("" if config.task == REGRESSION else " of the rarest class"),
        ) from None


def cross_validate(pipeline, split: Split, config: Config) -> dict[str, float]:
    """Mean and standard deviation of each metric over folds of the training rows (stratified by class)."""
    per_fold: list[dict[str, float]] = []
    for train_idx, valid_idx in _folds(split, config):
        model = fit(clone(pipeline), split.x_train.iloc[train_idx], split.y_train.iloc[train_idx], config)
        per_fold.append(score(model, split.x_train.iloc[valid_idx], split.y_train.iloc[valid_idx], config))
    summary = {}
    for name in TASK_METRICS[config.task]:
        values = np.array([fold[name] for fold in per_fold])
        summary[f"cv_{name}_mean"] = float(np.mean(values))
        summary[f"cv_{name}_std"] = float(np.std(values))
    return summary
