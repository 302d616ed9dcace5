"""A float64 skl2onnx converter for LightGBM's LGBMClassifier and LGBMRegressor.

LightGBM predicts in double: double features, double thresholds (`x <= t` goes left), double leaf values,
trees summed in order (the initial score is folded into the first tree's leaves), then its link function
(sigmoid for binary, softmax for multi-class, none for a regression). Here: ONNX-ML `TreeEnsemble`
(ai.onnx.ml opset 5) with float64 splits and leaf weights, summed tree by tree, and the same link in float64:
within 1e-15 of LightGBM on one thread (see mlci.contract.bundle.session_options). An objective or a split
it does not reproduce (categorical `==` splits, zero-as-missing, other objectives) raises
NotImplementedError: mlci then tries the float32 estimator (onnxmltools' converter) and checks its parity.
Registered by mlci.ship.onnx_boosting; float32 inputs go to onnxmltools' converter there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skl2onnx.common.data_types import DoubleTensorType
from skl2onnx.proto import onnx_proto

from mlci.ship.onnx_double import Ensemble, emit_labels


def is_double(operator: Any) -> bool:
    return isinstance(operator.inputs[0].type, DoubleTensorType)


def _tree_ensemble(scope: Any, container: Any, x: str, out: str, booster: Any, n_targets: int) -> None:
    """LightGBM's trees, in its order (tree i feeds target i mod n_targets), as one float64 TreeEnsemble."""
    ensemble = Ensemble()
    for i, info in enumerate(booster.dump_model()["tree_info"]):
        target = i % n_targets
        struct = info["tree_structure"]
        if "split_index" not in struct:  # a tree of one leaf
            ensemble.add_single_leaf(target, float(struct["leaf_value"]))
            continue

        def visit(n: dict[str, Any], target: int = target) -> tuple[int, bool]:
            """Add node n and its subtree; (its index, whether it is a leaf)."""
            if "split_index" not in n:
                return ensemble.add_leaf(target, float(n["leaf_value"])), True
            if n["decision_type"] != "<=":
                raise NotImplementedError(f"LightGBM categorical split {n['decision_type']!r} (use one-hot input)")
            if n["missing_type"] == "Zero":
                raise NotImplementedError("LightGBM zero_as_missing splits are not converted in float64")
            # missing_type "NaN": NaN follows default_left; "None": LightGBM maps NaN to 0.0 (not emulated:
            # mlci imputes numerics before the model, so no NaN reaches it).
            missing_left = n["missing_type"] == "NaN" and bool(n["default_left"])
            k = ensemble.add_split(float(n["threshold"]), int(n["split_feature"]), missing_left)
            for side, child in (("true", n["left_child"]), ("false", n["right_child"])):
                ensemble.link(k, side, *visit(child))
            return k, False

        ensemble.roots.append(visit(struct)[0])
    ensemble.emit(scope, container, x, out, n_targets)


def _objective(model: Any) -> str:
    return model.booster_.dump_model().get("objective", "")


def convert_classifier(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    classes = np.asarray(op.classes_)
    n_classes = len(classes)
    objective = _objective(op)
    x = operator.inputs[0].full_name
    raw = scope.get_unique_variable_name("lgbm_raw")
    proba = operator.outputs[1].full_name
    if n_classes == 2:
        if not objective.startswith("binary"):
            raise NotImplementedError(f"LightGBM objective {objective!r}")
        sigmoid = float(objective.split("sigmoid:")[1].split()[0]) if "sigmoid:" in objective else 1.0
        _tree_ensemble(scope, container, x, raw, op.booster_, 1)
        scaled = raw
        if sigmoid != 1.0:
            k = scope.get_unique_variable_name("sigmoid_k")
            container.add_initializer(k, onnx_proto.TensorProto.DOUBLE, [], [sigmoid])
            scaled = scope.get_unique_variable_name("lgbm_scaled")
            container.add_node("Mul", [raw, k], [scaled], name=scope.get_unique_operator_name("Mul"))
        # p = 1 / (1 + exp(-s)) exactly as LightGBM's BinaryLogloss::ConvertOutput; 1 - p as predict_proba
        neg = scope.get_unique_variable_name("neg")
        container.add_node("Neg", [scaled], [neg], name=scope.get_unique_operator_name("Neg"))
        ex = scope.get_unique_variable_name("exp")
        container.add_node("Exp", [neg], [ex], name=scope.get_unique_operator_name("Exp"))
        one = scope.get_unique_variable_name("one")
        container.add_initializer(one, onnx_proto.TensorProto.DOUBLE, [], [1.0])
        den = scope.get_unique_variable_name("den")
        container.add_node("Add", [one, ex], [den], name=scope.get_unique_operator_name("Add"))
        p1 = scope.get_unique_variable_name("p1")
        container.add_node("Div", [one, den], [p1], name=scope.get_unique_operator_name("Div"))
        p0 = scope.get_unique_variable_name("p0")
        container.add_node("Sub", [one, p1], [p0], name=scope.get_unique_operator_name("Sub"))
        container.add_node("Concat", [p0, p1], [proba], axis=1, name=scope.get_unique_operator_name("Concat"))
    else:
        if not objective.startswith("multiclass") or "multiclassova" in objective:
            raise NotImplementedError(f"LightGBM objective {objective!r}")
        _tree_ensemble(scope, container, x, raw, op.booster_, n_classes)
        container.add_node("Softmax", [raw], [proba], axis=1, name=scope.get_unique_operator_name("Softmax"))
    emit_labels(scope, container, classes, proba, operator.outputs[0].full_name)


def convert_regressor(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    objective = _objective(op)
    if not objective.startswith(("regression", "huber", "fair", "quantile", "mape")):
        raise NotImplementedError(f"LightGBM objective {objective!r} (needs a link function)")
    _tree_ensemble(scope, container, operator.inputs[0].full_name, operator.outputs[0].full_name, op.booster_, 1)
