"""A classifier taught on class indices, for estimators that refuse class names (XGBoost's XGBClassifier
accepts only the labels 0..k-1, and mlci's classes are text).

`LabelEncodedClassifier(estimator)` encodes the classes (sorted, as scikit-learn's LabelEncoder does), fits
the estimator on their indices, and answers with the class names: `classes_` are the names, `predict_proba`
the estimator's columns in that order, `predict` the name of the most probable class. It is a plain
scikit-learn estimator (saved by skops, allow-listed by name in mlci.track.model_loading) and converts to
ONNX as the estimator's graph plus a gather of the names (mlci.ship.onnx_boosting).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.preprocessing import LabelEncoder

# Estimators wrapped automatically by mlci.learn.model when they are a config's model.estimator.
NEEDS_INDICES = frozenset({"xgboost.XGBClassifier", "xgboost.sklearn.XGBClassifier"})


class LabelEncodedClassifier(ClassifierMixin, BaseEstimator):
    def __init__(self, estimator: Any = None):
        self.estimator = estimator

    def fit(self, x: Any, y: Any) -> LabelEncodedClassifier:
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        self.estimator_ = clone(self.estimator).fit(x, self.encoder_.transform(y))
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        return np.asarray(self.estimator_.predict_proba(x), dtype=np.float64)

    def predict(self, x: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(x), axis=1)]
