"""The dashboard's logic without Streamlit: schema helpers, CSV checks, chunking, result tables.

Pages stay thin (layout and widgets); everything that can be wrong is here and plain Python.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

NUMERIC = "numeric"
CATEGORICAL = "categorical"


# -- schema ---------------------------------------------------------------------------------------
def features(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return list(schema.get("features") or [])


def feature_names(schema: dict[str, Any]) -> list[str]:
    return [f["name"] for f in features(schema)]


def max_batch(schema: dict[str, Any], default: int = 100) -> int:
    try:
        value = int(schema.get("max_batch") or default)
    except (TypeError, ValueError):
        value = default
    return max(1, value)


def range_text(feature: dict[str, Any]) -> str:
    """'0 ≤ x ≤ 1', '≥ 18', 'any number', or the allowed categories."""
    if feature.get("type") == CATEGORICAL:
        cats = feature.get("categories")
        return "one of: " + ", ".join(map(str, cats)) if cats else "any text"
    low, high = feature.get("min"), feature.get("max")
    if low is not None and high is not None:
        text = f"{low:g} ≤ x ≤ {high:g}"
    elif low is not None:
        text = f"≥ {low:g}"
    elif high is not None:
        text = f"≤ {high:g}"
    else:
        text = "any number"
    return text + ("; may be empty" if feature.get("nullable") else "")


# -- the form ---------------------------------------------------------------------------------------
def numeric_step(feature: dict[str, Any], example: Any) -> float:
    """A sensible +/- step for a number input: about 1% of the range or of the example's magnitude."""
    low, high = feature.get("min"), feature.get("max")
    span = (high - low) if low is not None and high is not None and high > low else abs(float(example or 0)) or 1.0
    exponent = math.floor(math.log10(span / 100)) if span > 0 else 0
    return float(10**exponent)


def record_from_form(schema: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The record to send: numbers as floats, categories as strings, None only where the widget was empty."""
    record: dict[str, Any] = {}
    for f in features(schema):
        value = values.get(f["name"])
        if value is None or (isinstance(value, str) and value == "" and f.get("type") == NUMERIC):
            record[f["name"]] = None
        elif f.get("type") == NUMERIC:
            record[f["name"]] = float(value)
        else:
            record[f["name"]] = str(value)
    return record


def probability_frame(probabilities: dict[str, float]) -> pd.DataFrame:
    frame = pd.DataFrame({"class": list(probabilities), "probability": list(probabilities.values())})
    return frame.set_index("class")


# -- the batch ----------------------------------------------------------------------------------------
@dataclass
class CsvCheck:
    """What a CSV holds against the schema; `ok` when it can be sent."""

    frame: pd.DataFrame | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # block sending
    warnings: list[str] = field(default_factory=list)  # sent anyway (e.g. extra columns are dropped)

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.records)


def _listing(items: list[Any], limit: int = 8) -> str:
    shown = ", ".join(map(str, items[:limit]))
    return shown + (f" … ({len(items)} in all)" if len(items) > limit else "")


def _read_csv(text: str) -> pd.DataFrame:
    """Every cell as text, the header as it is written.

    pandas' defaults would hide what is wrong: it renames a repeated column (`a`, `a.1`) and turns
    extra leading fields into an index (shifting every value of the row), so the header is read as a
    plain row here, and a row longer than the header is an error. The separator is guessed among
    , ; tab | only (a one-column file has none).
    """
    try:
        sep = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    rows = pd.read_csv(io.StringIO(text), sep=sep, header=None, index_col=False, dtype=str, keep_default_na=False)
    frame = rows.iloc[1:].fillna("").reset_index(drop=True)  # a short row: its missing fields are empty
    frame.columns = [str(c).strip() for c in rows.iloc[0].fillna("")]
    return frame


def check_csv(data: bytes | str, schema: dict[str, Any], *, max_rows: int = 100_000) -> CsvCheck:
    """Parse a CSV and check its columns and values against the API's schema, before sending anything."""
    check = CsvCheck()
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    if not text.strip():
        check.errors.append("the file is empty")
        return check
    try:
        frame = _read_csv(text)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, TypeError) as error:
        check.errors.append(f"not a readable CSV: {error}")
        return check
    check.frame = frame
    wanted = feature_names(schema)
    if duplicated := sorted({c for c in frame.columns if list(frame.columns).count(c) > 1}):
        check.errors.append(f"duplicated columns: {_listing(duplicated)}")
    if missing := [name for name in wanted if name not in frame.columns]:
        check.errors.append(f"missing columns the model needs: {_listing(missing)}")
    if extra := [c for c in frame.columns if c not in wanted]:
        check.warnings.append(f"columns the model does not use (kept in the results, not sent): {_listing(extra)}")
    if frame.empty:
        check.errors.append("the file has a header but no rows")
    if len(frame) > max_rows:
        check.errors.append(f"{len(frame)} rows is over the dashboard's limit of {max_rows}; split the file")
    if check.errors:
        return check
    columns: dict[str, list[Any]] = {}
    for f in features(schema):
        raw = frame[f["name"]].str.strip()
        empty = raw == ""
        name = f["name"]
        if empty.any() and not f.get("nullable"):
            rows = [int(i) + 1 for i in empty[empty].index]
            check.errors.append(f"column {name!r}: empty values in rows {_listing(rows)} (this feature is required)")
        if f.get("type") == NUMERIC:
            numbers = pd.to_numeric(raw.where(~empty), errors="coerce")
            bad = numbers.isna() & ~empty
            if bad.any():
                rows = [int(i) + 1 for i in bad[bad].index]
                check.errors.append(f"column {name!r}: not a number in rows {_listing(rows)}")
            infinite = numbers.isin([math.inf, -math.inf])  # JSON has no infinity: the request could not be sent
            if infinite.any():
                rows = [int(i) + 1 for i in infinite[infinite].index]
                check.errors.append(f"column {name!r}: not a finite number in rows {_listing(rows)}")
            low, high = f.get("min"), f.get("max")
            out = pd.Series(False, index=frame.index)
            if low is not None:
                out |= numbers < low
            if high is not None:
                out |= numbers > high
            out &= ~infinite  # said once, above
            if out.any():
                rows = [int(i) + 1 for i in out[out].index]
                check.errors.append(f"column {name!r}: outside {range_text(f)} in rows {_listing(rows)}")
            columns[name] = [None if pd.isna(v) else float(v) for v in numbers]
        else:
            allowed = f.get("categories")
            if allowed:
                bad = ~raw.isin([str(c) for c in allowed]) & ~empty
                if bad.any():
                    values = sorted(set(raw[bad]))
                    check.errors.append(
                        f"column {name!r}: values {_listing(values)} are not one of {', '.join(map(str, allowed))}"
                    )
            columns[name] = [None if e else v for v, e in zip(raw, empty)]
    if not check.errors:
        names = list(columns)
        check.records = [dict(zip(names, row)) for row in zip(*(columns[n] for n in names))]
    return check


def chunks(records: list[dict[str, Any]], size: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(offset, chunk) pairs of at most `size` records."""
    size = max(1, size)
    for start in range(0, len(records), size):
        yield start, records[start : start + size]


def results_frame(
    source: pd.DataFrame,
    labels: list[str],
    probabilities: list[dict[str, float]],
    classes: list[str],
    versions: list[str],
) -> pd.DataFrame:
    """The uploaded rows with `prediction`, `p_<class>` and `model_version` columns added."""
    out = source.iloc[: len(labels)].copy().reset_index(drop=True)
    out["prediction"] = labels
    for cls in classes:
        out[f"p_{cls}"] = [p.get(cls) for p in probabilities]
    out["model_version"] = versions
    return out


# -- the live model -------------------------------------------------------------------------------------
def model_key(version: dict[str, Any]) -> tuple[str, str, str, str]:
    """What identifies the model being served: name, version, run, colour."""
    return (
        str(version.get("name", "")),
        str(version.get("version", "")),
        str(version.get("run_id", "")),
        str(version.get("colour", "")),
    )


def describe(version: dict[str, Any]) -> str:
    return (
        f"{version.get('name', '?')} v{version.get('version', '?')}"
        f" ({version.get('colour', '?')}, {version.get('environment', '?')})"
    )


def primary_metric(version: dict[str, Any]) -> tuple[str | None, float | None]:
    metrics = version.get("metrics") or {}
    name = version.get("primary_metric") or (next(iter(metrics)) if metrics else None)
    value = metrics.get(name) if name else None
    return name, (float(value) if isinstance(value, (int, float)) else None)


def known_metrics() -> list[str]:
    """The metrics mlci computes, classification's then regression's, in mlci.core.config's order (imported on
    first use: it brings pydantic and yaml, which the other pages do not need)."""
    from mlci.core import config

    return [m for names in config.TASK_METRICS.values() for m in names]


def higher_is_better(metric: str) -> bool | None:
    """The direction of a metric mlci computes (rmse, mae, log_loss… lower; r2, roc_auc… higher); None for a
    metric mlci does not know."""
    from mlci.core import config

    return None if metric not in known_metrics() else not config.lower_is_better(metric)


def metric_order(names: list[str]) -> list[str]:
    """Metric names in mlci's order, unknown ones last (alphabetically)."""
    known = known_metrics()
    return sorted(names, key=lambda n: (known.index(n) if n in known else len(known), n))


def direction_text(metric: str) -> str:
    """'lower is better', 'higher is better', or '' for a metric of unknown direction."""
    higher = higher_is_better(metric)
    return "" if higher is None else ("higher is better" if higher else "lower is better")
