"""skl2onnx converters that keep a pipeline in float64 where stock skl2onnx does not.

Registered once, on import, by `mlci.ship.export`. They change only what happens to float64 inputs; float32
conversion goes to the stock converters untouched.

- `SimpleImputer` on doubles: the stock converter emits ONNX-ML `Imputer`, which onnxruntime runs
  on float32 only (and stores the fill values as float32). Here: `Where(IsNaN(x), statistics, x)` with
  the statistics as a float64 tensor.
- Tree regressors (`DecisionTreeRegressor`, `RandomForestRegressor`, `ExtraTreesRegressor`,
  `GradientBoostingRegressor`) on doubles: the same `TreeEnsemble` with float64 leaf values, summed in
  scikit-learn's order (the boosting's initial value first, each leaf scaled by the learning rate as
  scikit-learn scales it; a forest's sum divided by its number of trees): equal to scikit-learn's
  prediction bit for bit.
- Tree classifiers (`DecisionTreeClassifier`, `RandomForestClassifier`, `ExtraTreesClassifier`) on
  doubles: the stock converter stores the split thresholds and leaf values as float32 and sums the
  trees in float32, which moves probabilities by up to 1e-2 (a split threshold crossed) and breaks
  scikit-learn's exact ties (0.5 / 0.5 becomes 0.49999994 / 0.50000006, another label). Here: ONNX-ML
  `TreeEnsemble` (ai.onnx.ml opset 5) with float64 thresholds chosen so that `x <= w` holds exactly
  when scikit-learn's `float32(x) <= threshold` does, float64 leaf probabilities normalised as
  scikit-learn normalises them, summed tree by tree in scikit-learn's order, divided by the number of
  trees, and the label taken as the first arg-max, as `numpy.argmax` does. Sequential summation needs
  the session to run the tree operator on one thread (see `api.bundle.session_options`).
"""

from __future__ import annotations

import contextlib
import numbers
from typing import Any

import numpy as np
from onnx import numpy_helper
from skl2onnx.common import _topology
from skl2onnx.common._registration import _converter_pool, _shape_calculator_pool
from skl2onnx.common.data_types import DoubleTensorType
from skl2onnx.common.tree_ensemble import sklearn_threshold
from skl2onnx.operator_converters.common import concatenate_variables
from skl2onnx.proto import onnx_proto

TREE_ENSEMBLE_OPSET = 5  # ai.onnx.ml opset of `TreeEnsemble`
TREE_CLASSIFIERS = ("SklearnDecisionTreeClassifier", "SklearnRandomForestClassifier", "SklearnExtraTreesClassifier")
TREE_REGRESSORS = (
    "SklearnDecisionTreeRegressor",
    "SklearnRandomForestRegressor",
    "SklearnExtraTreesRegressor",
    "SklearnGradientBoostingRegressor",
)
_registered = False


def _is_double(operator) -> bool:
    return isinstance(operator.inputs[0].type, DoubleTensorType)


def _imputer_converter(stock):
    def convert(scope, operator, container):
        if not _is_double(operator):
            return stock(scope, operator, container)
        op = operator.raw_operator
        stats = np.asarray(op.statistics_, dtype=np.float64)
        missing = op.missing_values
        if not (isinstance(missing, float) and np.isnan(missing)):
            raise NotImplementedError(f"SimpleImputer on doubles: missing_values={missing!r} (only NaN is converted)")
        if np.isnan(stats).any():
            raise NotImplementedError("SimpleImputer on doubles: a column had no values at fit time")
        x = concatenate_variables(scope, operator.inputs, container)
        fill = scope.get_unique_variable_name("impute_fill")
        container.add_initializer(fill, onnx_proto.TensorProto.DOUBLE, [1, stats.size], stats.tolist())
        isnan = scope.get_unique_variable_name("impute_isnan")
        container.add_node("IsNaN", [x], [isnan], name=scope.get_unique_operator_name("IsNaN"))
        container.add_node(
            "Where", [isnan, fill, x], [operator.outputs[0].full_name], name=scope.get_unique_operator_name("Where")
        )
        return None

    return convert


def _tree_shape_calculator(stock):
    def calculate(operator):
        stock(operator)
        if _is_double(operator) and len(operator.outputs) == 2:
            shape = operator.outputs[1].type.shape
            operator.outputs[1].set_type(DoubleTensorType(shape=shape))

    return calculate


def _leaf_probabilities(tree, n_classes: int) -> np.ndarray:
    """Per node, the class probabilities exactly as DecisionTreeClassifier.predict_proba computes them."""
    proba = np.array(tree.value[:, 0, :n_classes], dtype=np.float64)
    normalizer = proba.sum(axis=1)[:, np.newaxis]
    normalizer[normalizer == 0.0] = 1.0
    proba /= normalizer
    return proba


def _tree_classifier_converter(stock):
    def convert(scope: Any, operator: Any, container: Any) -> None:
        if not _is_double(operator):
            return stock(scope, operator, container)
        op = operator.raw_operator
        if getattr(op, "n_outputs_", 1) != 1:
            raise NotImplementedError("multi-output tree classifiers are not converted in float64")
        options = container.get_options(op, {"decision_path": False, "decision_leaf": False})
        if options.get("decision_path") or options.get("decision_leaf"):
            raise NotImplementedError("decision_path/decision_leaf are not supported in float64")
        if len(operator.outputs) != 2:
            raise NotImplementedError("float64 tree conversion produces exactly a label and probabilities")
        trees = [e.tree_ for e in op.estimators_] if hasattr(op, "estimators_") else [op.tree_]
        classes = np.asarray(op.classes_)
        n_classes = len(classes)

        ensemble = Ensemble()
        # One copy of every tree per class (a TreeEnsemble leaf feeds one target); class-major order so
        # each class sums its trees in scikit-learn's order.
        for target in range(n_classes):
            for tree in trees:
                proba = _leaf_probabilities(tree, n_classes)
                ensemble.add_tree(tree, target, lambda n, proba=proba, target=target: float(proba[n, target]))
        sums = scope.get_unique_variable_name("tree_sums")
        ensemble.emit(scope, container, operator.inputs[0].full_name, sums, n_classes)
        count = scope.get_unique_variable_name("tree_count")
        container.add_initializer(count, onnx_proto.TensorProto.DOUBLE, [], [float(len(trees))])
        container.add_node(
            "Div", [sums, count], [operator.outputs[1].full_name], name=scope.get_unique_operator_name("Div")
        )
        emit_labels(scope, container, classes, operator.outputs[1].full_name, operator.outputs[0].full_name)
        return None

    return convert


class Ensemble:
    """The arrays of one ONNX-ML `TreeEnsemble` (ai.onnx.ml opset 5), filled tree by tree, in summation order."""

    def __init__(self) -> None:
        keys = ("splits", "features", "true_ids", "false_ids", "true_leaf", "false_leaf", "missing")
        self.node: dict[str, list[Any]] = {k: [] for k in keys}
        self.roots: list[int] = []
        self.leaf_targets: list[int] = []
        self.leaf_weights: list[float] = []

    def add_leaf(self, target: int, weight: float) -> int:
        self.leaf_targets.append(target)
        self.leaf_weights.append(weight)
        return len(self.leaf_weights) - 1

    def add_single_leaf(self, target: int, weight: float) -> None:
        """A tree of one leaf: a node whose both branches reach it."""
        leaf = self.add_leaf(target, weight)
        self.roots.append(len(self.node["splits"]))
        self.add_split(np.inf, 0)
        self.link(len(self.node["splits"]) - 1, "true", leaf, True)
        self.link(len(self.node["splits"]) - 1, "false", leaf, True)

    def add_split(self, threshold: float, feature: int, missing_goes_true: bool = False) -> int:
        """A `x[feature] <= threshold` node, its children linked later; its index."""
        for key, value in (("splits", threshold), ("features", feature), ("missing", int(missing_goes_true))):
            self.node[key].append(value)
        for side in ("true", "false"):
            self.node[f"{side}_ids"].append(None)
            self.node[f"{side}_leaf"].append(None)
        return len(self.node["splits"]) - 1

    def link(self, index: int, side: str, child: int, is_leaf: bool) -> None:
        self.node[f"{side}_ids"][index] = child
        self.node[f"{side}_leaf"][index] = int(is_leaf)

    def add_tree(self, tree, target: int, weight) -> None:
        """A scikit-learn tree, its leaves weighing `weight(node)`, with float64 thresholds chosen so that
        `x <= w` holds exactly when scikit-learn's `float32(x) <= threshold` does."""
        left, right = tree.children_left, tree.children_right
        if left[0] == -1:
            self.add_single_leaf(target, weight(0))
            return
        index: dict[int, tuple[int, bool]] = {}
        for n in range(tree.node_count):  # parents come before their children in scikit-learn's arrays
            if left[n] == -1:
                index[n] = (self.add_leaf(target, weight(n)), True)
            else:
                split = sklearn_threshold(tree.threshold[n], np.float64, "BRANCH_LEQ")
                index[n] = (self.add_split(split, int(tree.feature[n])), False)
        self.roots.append(index[0][0])
        for n in range(tree.node_count):
            if left[n] != -1:
                for side, child in (("true", left[n]), ("false", right[n])):
                    self.link(index[n][0], side, *index[child])

    def emit(self, scope: Any, container: Any, x: str, out: str, n_targets: int) -> None:
        """The `TreeEnsemble` node, summing the trees' leaves per target (no post-transform)."""
        node = self.node
        container.add_node(
            "TreeEnsemble",
            [x],
            [out],
            op_domain="ai.onnx.ml",
            op_version=TREE_ENSEMBLE_OPSET,
            name=scope.get_unique_operator_name("TreeEnsemble"),
            n_targets=n_targets,
            aggregate_function=1,
            post_transform=0,
            tree_roots=self.roots,
            nodes_featureids=node["features"],
            nodes_splits=numpy_helper.from_array(np.asarray(node["splits"], dtype=np.float64)),
            nodes_modes=numpy_helper.from_array(np.zeros(len(node["splits"]), dtype=np.uint8)),
            nodes_truenodeids=node["true_ids"],
            nodes_trueleafs=node["true_leaf"],
            nodes_falsenodeids=node["false_ids"],
            nodes_falseleafs=node["false_leaf"],
            nodes_missing_value_tracks_true=node["missing"],
            leaf_targetids=self.leaf_targets,
            leaf_weights=numpy_helper.from_array(np.asarray(self.leaf_weights, dtype=np.float64)),
        )


def emit_labels(scope: Any, container: Any, classes: np.ndarray, probabilities: str, out: str) -> None:
    """The label of each row: the class of its first largest probability, as `numpy.argmax` takes it."""
    index = scope.get_unique_variable_name("argmax")
    container.add_node(
        "ArgMax", [probabilities], [index], axis=1, keepdims=0, name=scope.get_unique_operator_name("ArgMax")
    )
    labels = scope.get_unique_variable_name("class_labels")
    n_classes = len(classes)
    if all(isinstance(c, str) for c in classes):
        container.add_initializer(labels, onnx_proto.TensorProto.STRING, [n_classes], [str(c) for c in classes])
    elif all(isinstance(c, (numbers.Integral, np.integer, bool, np.bool_)) for c in classes):
        container.add_initializer(labels, onnx_proto.TensorProto.INT64, [n_classes], [int(c) for c in classes])
    else:
        raise NotImplementedError(f"class labels of type {np.asarray(classes).dtype} are not converted in float64")
    container.add_node("Gather", [labels, index], [out], axis=0, name=scope.get_unique_operator_name("Gather"))


def _regressor_trees(op) -> tuple[list[Any], float, float | None, float]:
    """(trees, leaf scale, initial value or None, divisor) as scikit-learn's predict combines them."""
    if hasattr(op, "init_"):  # GradientBoostingRegressor: init + learning_rate * tree, tree after tree
        if op.init_ == "zero":
            base = 0.0
        else:
            base = float(np.asarray(op.init_.predict(np.zeros((1, op.n_features_in_)))).ravel()[0])
        return [e[0].tree_ for e in op.estimators_], float(op.learning_rate), base, 1.0
    if hasattr(op, "estimators_"):  # forests: the trees' mean, summed in order then divided
        return [e.tree_ for e in op.estimators_], 1.0, None, float(len(op.estimators_))
    return [op.tree_], 1.0, None, 1.0


def _tree_regressor_converter(stock):
    def convert(scope: Any, operator: Any, container: Any) -> None:
        if not _is_double(operator):
            return stock(scope, operator, container)
        op = operator.raw_operator
        if getattr(op, "n_outputs_", 1) != 1:
            raise NotImplementedError("multi-output tree regressors are not converted in float64")
        trees, scale, base, divisor = _regressor_trees(op)
        ensemble = Ensemble()
        if base is not None:
            # The initial value as a first tree of one leaf: the sum starts 0 + base = base, then adds each
            # tree in order, exactly as scikit-learn's raw prediction does.
            ensemble.add_single_leaf(0, base)
        for tree in trees:
            # Each leaf weighs `scale` times its value (1 for averaged forests, the learning rate for
            # boosting), multiplied as scikit-learn multiplies.
            values = tree.value[:, 0, 0]
            ensemble.add_tree(
                tree, 0, lambda n, values=values: scale * float(values[n]) if scale != 1.0 else float(values[n])
            )
        sums = scope.get_unique_variable_name("tree_sums") if divisor != 1.0 else operator.outputs[0].full_name
        ensemble.emit(scope, container, operator.inputs[0].full_name, sums, 1)
        if divisor != 1.0:
            count = scope.get_unique_variable_name("tree_count")
            container.add_initializer(count, onnx_proto.TensorProto.DOUBLE, [], [divisor])
            container.add_node(
                "Div", [sums, count], [operator.outputs[0].full_name], name=scope.get_unique_operator_name("Div")
            )
        return None

    return convert


@contextlib.contextmanager
def ml_opset(version: int = TREE_ENSEMBLE_OPSET):
    """Let skl2onnx write an ai.onnx.ml opset newer than the one it knows (3), for `TreeEnsemble`."""
    stock = _topology.get_default_opset_for_domain

    def patched(domain):
        return max(version, stock(domain) or 0) if domain == "ai.onnx.ml" else stock(domain)

    _topology.get_default_opset_for_domain = patched
    try:
        yield
    finally:
        _topology.get_default_opset_for_domain = stock


def register() -> None:
    """Install the float64 converters (idempotent)."""
    global _registered
    if _registered:
        return
    imputer = _converter_pool["SklearnSimpleImputer"]
    _converter_pool["SklearnSimpleImputer"] = type(imputer)(
        _imputer_converter(imputer._fct), imputer.get_allowed_options()
    )
    for alias in TREE_CLASSIFIERS:
        stock = _converter_pool[alias]
        _converter_pool[alias] = type(stock)(_tree_classifier_converter(stock._fct), stock.get_allowed_options())
        _shape_calculator_pool[alias] = _tree_shape_calculator(_shape_calculator_pool[alias])
    for alias in TREE_REGRESSORS:
        stock = _converter_pool[alias]
        _converter_pool[alias] = type(stock)(_tree_regressor_converter(stock._fct), stock.get_allowed_options())
    _registered = True
