"""What the dashboard shows of a regression, without Streamlit: the training target's facts, where a
predicted number sits among them, the Batch results and the served-value histogram's bins.

A regression's bundle carries `target` (GET /version): the training target's min, max, mean, std and
deciles (`edges`). The deciles split the training targets into ten bins of about a tenth each, so a
prediction's bin says how it ranks among the training targets, and the API's predicted-value histogram
(`mlci_prediction_value`, buckets at those same edges) says how the served predictions spread.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

REGRESSION = "regression"


def is_regression(document: Mapping[str, Any] | None) -> bool:
    """Whether GET /schema or GET /version describes a regression (a document without `task` is a classifier's:
    APIs before regression models had none)."""
    return bool(document) and (document or {}).get("task") == REGRESSION


def number(value: float) -> str:
    """A predicted or training value as the pages print it: 4 significant digits, no exponent for usual sizes."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if 1e-3 <= abs(value) < 1e6 or value == 0 else f"{value:.3e}"


@dataclass(frozen=True)
class Target:
    """The training target of a regression (metadata.json `target`)."""

    min: float
    max: float
    mean: float
    std: float
    edges: tuple[float, ...]  # increasing deciles

    @property
    def deciles(self) -> bool:
        """Whether the edges are the nine deciles (none collapsed): each bin then holds a tenth of the targets."""
        return len(self.edges) == 9

    def bounds(self) -> list[tuple[float, float]]:
        """The bins the edges make, from min to max: [min, e0], (e0, e1], …, (eN, max]."""
        points = [self.min, *self.edges, self.max]
        return list(itertools.pairwise(points))

    def text(self) -> str:
        return (
            f"{number(self.min)} to {number(self.max)}, mean {number(self.mean)} ± {number(self.std)} "
            f"(standard deviation)"
        )


def target(version: Mapping[str, Any] | None) -> Target | None:
    """The target facts of GET /version, or None (a classifier, or a bundle packaged without them)."""
    facts = (version or {}).get("target")
    if not isinstance(facts, Mapping):
        return None
    try:
        values = [float(facts[k]) for k in ("min", "max", "mean", "std")]
        edges = tuple(float(e) for e in facts.get("edges") or [])
    except (KeyError, TypeError, ValueError):
        return None
    low, high, mean, std = values
    if not all(math.isfinite(v) for v in (*values, *edges)) or high < low:
        return None
    if any(b <= a for a, b in itertools.pairwise(edges)) or (edges and (edges[0] < low or edges[-1] > high)):
        return None
    return Target(min=low, max=high, mean=mean, std=std, edges=edges)


def percentile(value: float, facts: Target) -> float:
    """About which percentile of the training target `value` is: its decile bin, linear within the bin
    (0 below the min, 100 above the max). Only meaningful when the edges are the nine deciles."""
    if value <= facts.min:
        return 0.0
    if value >= facts.max:
        return 100.0
    bounds = facts.bounds()
    index = min(bisect.bisect_left(facts.edges, value), len(bounds) - 1)
    low, high = bounds[index]
    within = (value - low) / (high - low) if high > low else 1.0
    return 100.0 * (index + within) / len(bounds)


def position(value: float, facts: Target) -> str:
    """Where a prediction sits in the training target, in words."""
    if value < facts.min:
        return f"below every training target (min {number(facts.min)}): the model extrapolates"
    if value > facts.max:
        return f"above every training target (max {number(facts.max)}): the model extrapolates"
    sigma = (value - facts.mean) / facts.std if facts.std > 0 else 0.0
    side = (
        "at the mean"
        if abs(sigma) < 0.05
        else f"{abs(sigma):.1f} standard deviations {'above' if sigma > 0 else 'below'} the mean"
    )
    if not facts.deciles:
        return f"within the training range, {side}"
    return f"about the {ordinal(round(percentile(value, facts)))} percentile of the training target, {side}"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# -- Batch ---------------------------------------------------------------------------------------------
def results_frame(source: pd.DataFrame, values: list[float], versions: list[str]) -> pd.DataFrame:
    """The uploaded rows with `prediction` (the predicted number) and `model_version` columns added."""
    out = source.iloc[: len(values)].copy().reset_index(drop=True)
    out["prediction"] = pd.Series(values, dtype=float)
    out["model_version"] = versions
    return out


def summary(values: pd.Series) -> dict[str, str]:
    """The figures shown beside the Batch histogram."""
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    if numbers.empty:
        return {}
    return {
        "mean": number(float(numbers.mean())),
        "median": number(float(numbers.median())),
        "min": number(float(numbers.min())),
        "max": number(float(numbers.max())),
    }


# -- Live: the served-value histogram ----------------------------------------------------------------------
@dataclass(frozen=True)
class Bin:
    low: float  # -inf for the first bin
    high: float  # +inf for the last
    count: float

    @property
    def label(self) -> str:
        if math.isinf(self.low):
            return f"≤ {number(self.high)}"
        if math.isinf(self.high):
            return f"> {number(self.low)}"
        return f"{number(self.low)} – {number(self.high)}"


def bins(cumulative: Mapping[float, float]) -> list[Bin]:
    """Per-bin counts from a Prometheus histogram's cumulative buckets (upper bound -> count below it, +Inf
    included); [] without the +Inf bucket. A count that goes down (a torn scrape) gives 0, never negative."""
    bounds = sorted(cumulative)
    if not bounds or not math.isinf(bounds[-1]):
        return []
    out, low, below = [], -math.inf, 0.0
    for high in bounds:
        count = cumulative[high]
        out.append(Bin(low=low, high=high, count=max(0.0, count - below)))
        low, below = high, max(below, count)
    return out


def shares_frame(found: list[Bin]) -> pd.DataFrame:
    """One row per bin, in order: its label, count and share of the predictions (0 when there are none)."""
    total = sum(b.count for b in found)
    rows = [
        {"order": i, "bin": b.label, "predictions": b.count, "share": (b.count / total if total else 0.0)}
        for i, b in enumerate(found)
    ]
    return pd.DataFrame(rows, columns=["order", "bin", "predictions", "share"])
