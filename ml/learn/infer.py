"""What `mlci init` reads from a CSV it has never seen: each column's type, categories or range,
whether it has missing values, and the target: its classes, or its range when it is a number to
predict. Pure decisions on the all-text frame that ml.data.read_csv parses (one parser: only an
empty field is missing, `NA` stays a category)."""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlci.core.errors import DataError

# More distinct text values than this is an identifier or free text, not a category a model can learn.
MAX_CATEGORIES = 50
# A numeric target with more distinct values than this is a number to predict (a regression); a text
# target with more is refused (an identifier or free text, not classes).
MAX_CLASSES = 20
CLASSIFICATION, REGRESSION = "classification", "regression"
TASKS = (CLASSIFICATION, REGRESSION)
# How far the declared range reaches past what was seen, as a fraction of the observed span: a new
# value slightly outside today's data is not an error; one far outside it is.
RANGE_MARGIN = 0.1
MIN_ROWS = 50  # the config's default data.min_rows
# A name whose last word is `id`: `id`, `customer_id`, `customer-id`, `Customer ID`, `customerId` (not `paid`).
ID_NAME = re.compile(r"(?:^|[^A-Za-z])[iI][dD]$|[a-z]Id$")


@dataclass(frozen=True)
class FeatureGuess:
    """One column kept as a feature, with what was seen and what is declared."""

    name: str
    type: str  # numeric | categorical
    missing: int
    min: float | None = None
    max: float | None = None
    observed_min: float | None = None
    observed_max: float | None = None
    categories: list[str] | None = None

    @property
    def nullable(self) -> bool:
        return self.missing > 0


@dataclass(frozen=True)
class Excluded:
    """A column left out of the features, and why (written as a comment in mlci.yaml)."""

    name: str
    reason: str


@dataclass(frozen=True)
class TargetSummary:
    """A regression target as seen: what `mlci init` writes as comments and as the gate's starting ceiling."""

    min: float
    max: float
    mean: float
    std: float  # the rmse of always predicting the mean: the baseline a model must beat
    distinct: int


@dataclass(frozen=True)
class Inference:
    rows: int
    target: str
    classes: dict[str, int]  # class -> rows (empty for a regression)
    features: list[FeatureGuess] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)
    task: str = CLASSIFICATION
    # Why this task: the rule that chose it, or that it was given (`mlci init --task`).
    task_reason: str = ""
    summary: TargetSummary | None = None  # regression only


def _nice_step(margin: float) -> float:
    """A round step (a power of ten) no bigger than the margin, so bounds read like 0, 120 or 1.5."""
    return 10.0 ** math.floor(math.log10(margin)) if margin > 0 else 1.0


def _finite(value: float) -> float:
    """The value clamped to the largest finite floats: a range around ±1.7e308 still has bounds."""
    return min(max(value, -sys.float_info.max), sys.float_info.max)


def widened_range(low: float, high: float, integers: bool = False) -> tuple[float, float]:
    """[low, high] widened by RANGE_MARGIN of the span (or of the value when there is no span), on round
    numbers (whole ones for a column of integers); a column never seen below zero is not declared
    below zero (counts, amounts, ages). Bounds beyond the largest float are clamped to it."""
    # The margin is taken from each end separately: high - low overflows for a column spanning ±1.7e308.
    span_margin = high * RANGE_MARGIN - low * RANGE_MARGIN
    margin = span_margin if span_margin > 0 else max(abs(high) * RANGE_MARGIN, 1.0)
    step = max(_nice_step(margin), 1.0) if integers else _nice_step(margin)
    lower = _finite(math.floor(_finite(low - margin) / step) * step)
    upper = _finite(math.ceil(_finite(high + margin) / step) * step)
    if low >= 0:
        lower = max(lower, 0.0)
    # round() drops float noise such as 0.30000000000000004 from the multiplication.
    digits = max(0, -math.floor(math.log10(step)))
    return _finite(round(lower, digits)), _finite(round(upper, digits))


def _numeric(values: pd.Series) -> pd.Series | None:
    """The column as finite numbers, or None when any present value is not one."""
    present = values.dropna()
    if present.empty:
        return None
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.isna().any() or not np.isfinite(numbers.astype(float)).all():
        return None
    return numbers.astype(float)


def identifier_reason(name: str, numbers: pd.Series, rows: int) -> str | None:
    """Why a numeric column is an identifier, or None. The rule (also written in mlci.yaml's comment):
    whole numbers, none missing, every one different, and either the name ends in `id` as a word
    (`id`, `customer_id`, `Customer ID`, `customerId`) or the values only go up, row after row.
    A model would learn the rows by heart from such a column and fail on new customers."""
    if len(numbers) != rows or not (numbers == numbers.round()).all() or not numbers.is_unique:
        return None
    if ID_NAME.search(name):
        return f"{rows} distinct whole numbers and a name ending in 'id': an identifier?"
    if numbers.is_monotonic_increasing:
        return f"{rows} distinct whole numbers, increasing row after row: an identifier or a row number?"
    return None


def guess_feature(name: str, values: pd.Series) -> FeatureGuess | Excluded:
    missing = int(values.isna().sum())
    if missing == len(values):
        return Excluded(name, "every value is missing")
    numbers = _numeric(values)
    if numbers is not None and (reason := identifier_reason(name, numbers, len(values))):
        return Excluded(name, reason)
    if numbers is not None:
        low, high = float(numbers.min()), float(numbers.max())
        lower, upper = widened_range(low, high, integers=bool((numbers == numbers.round()).all()))
        return FeatureGuess(name, "numeric", missing, lower, upper, low, high)
    distinct = sorted(values.dropna().unique().tolist())
    if len(distinct) > MAX_CATEGORIES:
        return Excluded(
            name, f"{len(distinct)} distinct text values, over {MAX_CATEGORIES}: an identifier or free text?"
        )
    return FeatureGuess(name, "categorical", missing, categories=[str(v) for v in distinct])


def min_class_rows(cv_folds: int, test_size: float) -> int:
    """Rows a class needs so that, after the held-out split, every cross-validation fold still has one."""
    return math.ceil((cv_folds + 1) / (1 - test_size))


def _require_column(frame: pd.DataFrame, target: str) -> pd.Series:
    if target not in frame.columns:
        raise DataError(
            f"no column named {target!r} in the data",
            details=[f"columns: {', '.join(map(str, frame.columns))}"],
            hint="pass --target with one of these names (case and spaces count)",
        )
    labels = frame[target]
    if (empty := int(labels.isna().sum())) > 0:
        lines = ", ".join(str(i + 2) for i in labels[labels.isna()].index[:3])
        raise DataError(
            f"target {target!r} has {empty} missing value(s) (lines {lines}…)",
            hint="every row needs a target value: fill or drop those rows",
        )
    return labels


def choose_task(labels: pd.Series, given: str | None) -> tuple[str, str]:
    """The task, and why: the one given, else regression for a numeric target with over MAX_CLASSES
    distinct values, classification otherwise."""
    distinct = labels.nunique()
    if given is not None:
        if given not in TASKS:
            raise DataError(
                f"--task {given!r} is not one of {', '.join(TASKS)}", hint="pass --task classification or regression"
            )
        return given, "given with --task"
    numbers = _numeric(labels)
    if numbers is not None and distinct > MAX_CLASSES:
        return REGRESSION, (
            f"numeric target with {distinct} distinct values, over {MAX_CLASSES}: a number to predict "
            "(pass --task classification if these are classes)"
        )
    kind = "numeric target" if numbers is not None else "text target"
    return CLASSIFICATION, (
        f"{kind} with {distinct} distinct values: classes"
        + (" (pass --task regression if it is a number to predict)" if numbers is not None else "")
    )


def _check_classes(labels: pd.Series, target: str, cv_folds: int, test_size: float) -> dict[str, int]:
    counts = {str(k): int(v) for k, v in labels.value_counts().sort_index().items()}
    if len(counts) < 2:
        raise DataError(
            f"target {target!r} has one class only ({next(iter(counts))!r}): a classifier needs at least two",
            hint="check --target names the label column, or add rows of the other classes",
        )
    if len(counts) > MAX_CLASSES:
        numeric = _numeric(labels) is not None
        raise DataError(
            f"target {target!r} has {len(counts)} distinct values, over {MAX_CLASSES}: too many classes to learn",
            hint="pass --task regression to predict it as a number"
            if numeric
            else "pass --target with a column of classes (this one looks like an identifier or free text)",
        )
    needed = min_class_rows(cv_folds, test_size)
    if rare := {k: v for k, v in counts.items() if v < needed}:
        raise DataError(
            f"target {target!r}: class(es) with fewer than {needed} rows, too rare for the "
            f"{cv_folds}-fold cross-validation after a {test_size:g} held-out split",
            details=[f"{k!r}: {v} row(s)" for k, v in rare.items()],
            hint="add rows of those classes, or merge or drop them (or pass --task regression for a number)",
        )
    return counts


def _summarise(labels: pd.Series, target: str) -> TargetSummary:
    numbers = _numeric(labels)
    if numbers is None:
        examples = ", ".join(repr(v) for v in labels[pd.to_numeric(labels, errors="coerce").isna()].unique()[:3])
        raise DataError(
            f"target {target!r} is not numeric (values such as {examples}): a regression predicts a number",
            hint="pass --task classification, or --target with a numeric column",
        )
    if numbers.nunique() < 2:
        raise DataError(f"target {target!r} has one value only: there is nothing to predict", hint="check --target")
    return TargetSummary(
        min=float(numbers.min()),
        max=float(numbers.max()),
        mean=float(numbers.mean()),
        std=float(numbers.std(ddof=0)),
        distinct=int(numbers.nunique()),
    )


def infer(
    frame: pd.DataFrame, target: str, cv_folds: int = 5, test_size: float = 0.2, task: str | None = None
) -> Inference:
    """The guesses for every column of an all-text frame and the task (given, or inferred from the target);
    DataError when it cannot train a model of that task."""
    if len(frame.columns) < 2:
        raise DataError(
            f"the data has {len(frame.columns)} column(s): it needs the target and at least one feature",
            hint="check it is a comma-separated file with a header row (or pass --delimiter)",
        )
    if len(frame) < MIN_ROWS:
        raise DataError(f"the data has {len(frame)} row(s), mlci trains on at least {MIN_ROWS}", hint="add rows")
    labels = _require_column(frame, target)
    chosen, reason = choose_task(labels, task)
    classes, summary = {}, None
    if chosen == REGRESSION:
        summary = _summarise(labels, target)
    else:
        classes = _check_classes(labels, target, cv_folds, test_size)
    guesses = [guess_feature(str(name), frame[name]) for name in frame.columns if name != target]
    features = [g for g in guesses if isinstance(g, FeatureGuess)]
    excluded = [g for g in guesses if isinstance(g, Excluded)]
    if not features:
        raise DataError(
            "no column can be a feature",
            details=[f"{e.name}: {e.reason}" for e in excluded],
            hint="a feature is a numeric column or a text column with few distinct values",
        )
    return Inference(
        rows=len(frame),
        target=target,
        classes=classes,
        features=features,
        excluded=excluded,
        task=chosen,
        task_reason=reason,
        summary=summary,
    )
