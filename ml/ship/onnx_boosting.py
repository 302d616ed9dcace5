"""LightGBM and XGBoost in skl2onnx pipelines: their converters registered, once, when a pipeline holds one.

- LightGBM: float64 through mlci.ship.onnx_lightgbm (TreeEnsemble, within 1e-15 of LightGBM); float32
  through onnxmltools' converter (the cast path of mlci.ship.export).
- XGBoost: float32 only (it computes in float32 itself): onnxmltools' converter; a float64 input is
  refused so that mlci.ship.export takes the cast path and says why.
- mlci.learn.encoded.LabelEncodedClassifier (an XGBClassifier taught on class indices): the classifier's
  graph, then its class names gathered by the predicted index.

onnxmltools writes `TreeEnsembleClassifier`/`TreeEnsembleRegressor` without an op version: they are
pinned to ai.onnx.ml 3 here (deprecated in 5, where onnxruntime refuses them).
Imported only when a pipeline's estimator comes from lightgbm, xgboost or mlci.learn.encoded: neither
library is needed otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skl2onnx.common.data_types import DoubleTensorType

LEGACY_TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
LEGACY_ML_OPSET = 3
CLASSIFIER_OPTIONS = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
PACKAGES = ("lightgbm", "xgboost", "mlci.learn.encoded")
_registered: set[str] = set()


def needed(estimator: Any) -> bool:
    """Whether converting `estimator` needs this module's converters."""
    return type(estimator).__module__.startswith(PACKAGES)


def pin_legacy_tree_ops(convert):
    """The converter, with the tree operators it adds pinned to the op version they still run at."""

    def wrapped(scope: Any, operator: Any, container: Any) -> Any:
        stock = container.add_node

        def add_node(op_type, inputs, outputs, op_domain="", op_version=None, **attrs):
            if op_domain == "ai.onnx.ml" and op_type in LEGACY_TREE_OPS and op_version is None:
                op_version = LEGACY_ML_OPSET
            return stock(op_type, inputs, outputs, op_domain=op_domain, op_version=op_version, **attrs)

        container.add_node = add_node
        try:
            return convert(scope, operator, container)
        finally:
            del container.add_node  # back to the class's method

    return wrapped


def _by_precision(double, single):
    def convert(scope: Any, operator: Any, container: Any) -> Any:
        if isinstance(operator.inputs[0].type, DoubleTensorType):
            if double is None:
                raise NotImplementedError(
                    f"{type(operator.raw_operator).__name__} converts in float32 only (XGBoost computes in float32)"
                )
            return double(scope, operator, container)
        return single(scope, operator, container)

    return convert


def _register_lightgbm() -> None:
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    from mlci.ship import onnx_lightgbm

    single = pin_legacy_tree_ops(convert_lightgbm)
    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        _by_precision(onnx_lightgbm.convert_classifier, single),
        options=CLASSIFIER_OPTIONS,
    )
    update_registered_converter(
        LGBMRegressor,
        "LightGbmLGBMRegressor",
        calculate_linear_regressor_output_shapes,
        _by_precision(onnx_lightgbm.convert_regressor, single),
        options={"split": None},
    )


def _register_xgboost() -> None:
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from xgboost import XGBClassifier, XGBRegressor

    single = pin_legacy_tree_ops(convert_xgboost)
    update_registered_converter(
        XGBClassifier,
        "XGBoostXGBClassifier",
        calculate_linear_classifier_output_shapes,
        _by_precision(None, single),
        options=CLASSIFIER_OPTIONS,
    )
    update_registered_converter(
        XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes, _by_precision(None, single)
    )


def _convert_encoded(scope: Any, operator: Any, container: Any) -> None:
    """The inner classifier's graph on the same input; its label (a class index) mapped to the class name."""
    from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
    from skl2onnx.algebra.onnx_ops import OnnxGather, OnnxIdentity

    op = operator.raw_operator
    version = container.target_opset
    inner = OnnxSubEstimator(op.estimator_, operator.inputs[0], op_version=version, options={"zipmap": False})
    names = np.array([str(c) for c in op.classes_])
    label = OnnxGather(names, inner[0], axis=0, op_version=version, output_names=[operator.outputs[0]])
    probabilities = OnnxIdentity(inner[1], op_version=version, output_names=[operator.outputs[1]])
    label.add_to(scope, container)
    probabilities.add_to(scope, container)


def _register_encoded() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    from mlci.learn.encoded import LabelEncodedClassifier

    update_registered_converter(
        LabelEncodedClassifier,
        "MlciLabelEncodedClassifier",
        calculate_linear_classifier_output_shapes,
        _convert_encoded,
        options=CLASSIFIER_OPTIONS,
    )


def register(estimator: Any) -> None:
    """Register what converting `estimator` needs (idempotent; imports only the estimator's library)."""
    package = type(estimator).__module__
    inner = getattr(estimator, "estimator_", None)
    for name, install in (
        ("lightgbm", _register_lightgbm),
        ("xgboost", _register_xgboost),
        ("mlci.learn.encoded", _register_encoded),
    ):
        wanted = package.startswith(name) or (inner is not None and type(inner).__module__.startswith(name))
        if wanted and name not in _registered:
            install()
            _registered.add(name)
