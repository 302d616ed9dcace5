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

        node: dict[str, list[Any]] = {
            "splits": [],
            "features": [],
            "true_ids": [],
            "false_ids": [],
            "true_leaf": [],
            "false_leaf": [],
        }
        leaf_targets: list[int] = []
        leaf_weights: list[float] = []
        roots: list[int] = []
        # One copy of every tree per class (a TreeEnsemble leaf feeds one target); class-major order so
        # each class sums its trees in scikit-learn's order.
        for target in range(n_classes):
            for tree in trees:
                proba = _leaf_probabilities(tree, n_classes)
                left, right = tree.children_left, tree.children_right
                internal = [i for i in range(tree.node_count) if left[i] != -1]
                leaves = [i for i in range(tree.node_count) if left[i] == -1]
                node_index = {n: len(node["splits"]) + k for k, n in enumerate(internal)}
                leaf_index = {n: len(leaf_targets) + k for k, n in enumerate(leaves)}
                for n in leaves:
                    leaf_targets.append(target)
                    leaf_weights.append(float(proba[n, target]))
                if not internal:  # a single-leaf tree: a node whose both branches reach that leaf
                    roots.append(len(node["splits"]))
                    node["splits"].append(np.inf)
                    node["features"].append(0)
                    for side in ("true", "false"):
                        node[f"{side}_ids"].append(leaf_index[0])
                        node[f"{side}_leaf"].append(1)
                    continue
                roots.append(node_index[0])
                for n in internal:
                    node["splits"].append(sklearn_threshold(tree.threshold[n], np.float64, "BRANCH_LEQ"))
                    node["features"].append(int(tree.feature[n]))
                    for side, child in (("true", left[n]), ("false", right[n])):
                        is_leaf = left[child] == -1
                        node[f"{side}_ids"].append(leaf_index[child] if is_leaf else node_index[child])
                        node[f"{side}_leaf"].append(int(is_leaf))

        x = operator.inputs[0].full_name
        sums = scope.get_unique_variable_name("tree_sums")
        container.add_node(
            "TreeEnsemble",
            [x],
            [sums],
            op_domain="ai.onnx.ml",
            op_version=TREE_ENSEMBLE_OPSET,
            name=scope.get_unique_operator_name("TreeEnsemble"),
            n_targets=n_classes,
            aggregate_function=1,
            post_transform=0,
            tree_roots=roots,
            nodes_featureids=node["features"],
            nodes_splits=numpy_helper.from_array(np.asarray(node["splits"], dtype=np.float64)),
            nodes_modes=numpy_helper.from_array(np.zeros(len(node["splits"]), dtype=np.uint8)),
            nodes_truenodeids=node["true_ids"],
            nodes_trueleafs=node["true_leaf"],
            nodes_falsenodeids=node["false_ids"],
            nodes_falseleafs=node["false_leaf"],
            leaf_targetids=leaf_targets,
            leaf_weights=numpy_helper.from_array(np.asarray(leaf_weights, dtype=np.float64)),
        )
        count = scope.get_unique_variable_name("tree_count")
        container.add_initializer(count, onnx_proto.TensorProto.DOUBLE, [], [float(len(trees))])
        container.add_node(
            "Div", [sums, count], [operator.outputs[1].full_name], name=scope.get_unique_operator_name("Div")
        )
        index = scope.get_unique_variable_name("argmax")
        container.add_node(
            "ArgMax",
            [operator.outputs[1].full_name],
            [index],
            axis=1,
            keepdims=0,
            name=scope.get_unique_operator_name("ArgMax"),
        )
        labels = scope.get_unique_variable_name("class_labels")
        if all(isinstance(c, str) for c in classes):
            container.add_initializer(labels, onnx_proto.TensorProto.STRING, [n_classes], [str(c) for c in classes])
        elif all(isinstance(c, (numbers.Integral, np.integer, bool, np.bool_)) for c in classes):
            container.add_initializer(labels, onnx_proto.TensorProto.INT64, [n_classes], [int(c) for c in classes])
        else:
            raise NotImplementedError(f"class labels of type {classes.dtype} are not converted in float64")
        container.add_node(
            "Gather",
            [labels, index],
            [operator.outputs[0].full_name],
            axis=0,
            name=scope.get_unique_operator_name("Gather"),
        )
        return None

    return convert


def _add_tree(node: dict[str, list[Any]], roots: list[int], leaf_weights: list[float], tree, scale: float) -> None:
    """One tree into the TreeEnsemble's arrays: float64 thresholds equivalent to scikit-learn's float32
    comparison, each leaf weighing `scale` times its value (1 for averaged forests, the learning rate for
    boosting, as scikit-learn multiplies)."""
    left, right = tree.children_left, tree.children_right
    internal = [i for i in range(tree.node_count) if left[i] != -1]
    leaves = [i for i in range(tree.node_count) if left[i] == -1]
    node_index = {n: len(node["splits"]) + k for k, n in enumerate(internal)}
    leaf_index = {n: len(leaf_weights) + k for k, n in enumerate(leaves)}
    for n in leaves:
        value = float(tree.value[n, 0, 0])
        leaf_weights.append(scale * value if scale != 1.0 else value)
    if not internal:
        _single_leaf(node, roots, leaf_index[0])
        return
    roots.append(node_index[0])
    for n in internal:
        node["splits"].append(sklearn_threshold(tree.threshold[n], np.float64, "BRANCH_LEQ"))
        node["features"].append(int(tree.feature[n]))
        for side, child in (("true", left[n]), ("false", right[n])):
            is_leaf = left[child] == -1
            node[f"{side}_ids"].append(leaf_index[child] if is_leaf else node_index[child])
            node[f"{side}_leaf"].append(int(is_leaf))


def _single_leaf(node: dict[str, list[Any]], roots: list[int], leaf: int) -> None:
    """A tree of one leaf: a node whose both branches reach it."""
    roots.append(len(node["splits"]))
    node["splits"].append(np.inf)
    node["features"].append(0)
    for side in ("true", "false"):
        node[f"{side}_ids"].append(leaf)
        node[f"{side}_leaf"].append(1)


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
        node: dict[str, list[Any]] = {
            k: [] for k in ("splits", "features", "true_ids", "false_ids", "true_leaf", "false_leaf")
        }
        roots: list[int] = []
        leaf_weights: list[float] = []
        if base is not None:
            # The initial value as a first tree of one leaf: the sum starts 0 + base = base, then adds each
            # tree in order, exactly as scikit-learn's raw prediction does.
            leaf_weights.append(base)
            _single_leaf(node, roots, 0)
        for tree in trees:
            _add_tree(node, roots, leaf_weights, tree, scale)
        x = operator.inputs[0].full_name
        sums = scope.get_unique_variable_name("tree_sums") if divisor != 1.0 else operator.outputs[0].full_name
        container.add_node(
            "TreeEnsemble",
            [x],
            [sums],
            op_domain="ai.onnx.ml",
            op_version=TREE_ENSEMBLE_OPSET,
            name=scope.get_unique_operator_name("TreeEnsemble"),
            n_targets=1,
            aggregate_function=1,
            post_transform=0,
            tree_roots=roots,
            nodes_featureids=node["features"],
            nodes_splits=numpy_helper.from_array(np.asarray(node["splits"], dtype=np.float64)),
            nodes_modes=numpy_helper.from_array(np.zeros(len(node["splits"]), dtype=np.uint8)),
            nodes_truenodeids=node["true_ids"],
            nodes_trueleafs=node["true_leaf"],
            nodes_falsenodeids=node["false_ids"],
            nodes_falseleafs=node["false_leaf"],
            leaf_targetids=[0] * len(leaf_weights),
            leaf_weights=numpy_helper.from_array(np.asarray(leaf_weights, dtype=np.float64)),
        )
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
