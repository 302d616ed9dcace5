"""One answer per record, as /predict returns it and as a bundle's reference rows expect it, for either task.

A classifier answers {"label", "probabilities" (one per class)}; a regression answers {"value"}. The API
builds its answers here, and its warm-up and the deploy's smoke test compare an answer with the expected
one here, so the three agree on one shape. stdlib only: the API image imports it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

REGRESSION = "regression"


def answer(task: str, classes: Sequence[str], output: Any, probabilities: Sequence[float]) -> dict[str, Any]:
    """The answer for one record from the model's output (a label or a value) and its probability row."""
    if task == REGRESSION:
        return {"value": float(output)}
    return {"label": output, "probabilities": dict(zip(classes, probabilities))}


def difference(task: str, got: dict[str, Any], expected: dict[str, Any], tolerance: float) -> str | None:
    """How `got` differs from `expected` beyond `tolerance` (absolute), or None when it does not."""
    if task == REGRESSION:
        value, want = got.get("value"), expected["value"]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return f"value {value!r} is not a number, expected {want!r}"
        if abs(value - want) > tolerance:
            return f"value {value!r} is off by {abs(value - want):.2e} from {want!r} (tolerance {tolerance:g})"
        return None
    if got.get("label") != expected["label"]:
        return f"label {got.get('label')!r}, expected {expected['label']!r}"
    probabilities = got.get("probabilities") or {}
    missing = sorted(set(expected["probabilities"]) - set(probabilities))
    if missing:
        return f"no probability for class(es) {', '.join(map(repr, missing))}"
    worst = max((abs(probabilities[k] - v) for k, v in expected["probabilities"].items()), default=0.0)
    if not worst <= tolerance:
        return f"probabilities off by {worst:.2e} (tolerance {tolerance:g})"
    return None
