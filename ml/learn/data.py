"""Data validation before any training, and the dataset fingerprint.

Every violation is collected and reported in one message: a user fixing a CSV wants the whole
list, not one problem per run.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlci.contract.bundle_digest import sha256_file  # the one file hasher, in api/: the API image ships no ml/
from mlci.core.config import REGRESSION, Config
from mlci.core.errors import BadInput, DataError

MAX_EXAMPLES = 3
MISSING_MARKERS = {"NA", "N/A", "#N/A", "NAN", "NULL", "NONE", "-"}


@dataclass(frozen=True)
class Fingerprint:
    path: str
    sha256: str
    rows: int
    columns: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Dataset:
    frame: pd.DataFrame
    fingerprint: Fingerprint


def _rows(mask: pd.Series) -> str:
    # Line numbers as a user sees them in an editor: header is line 1.
    lines = [str(i + 2) for i in mask[mask].index[:MAX_EXAMPLES]]
    more = int(mask.sum()) - len(lines)
    return ", ".join(lines) + (f" and {more} more" if more > 0 else "")


# How a delimiter can be typed on a command line: a tab is hard to type, so `tab` and `\t` name it.
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t"}
# One character that cannot be a delimiter: the CSV quote, line ends.
NOT_DELIMITERS = {'"', "\n", "\r"}


def parse_delimiter(text: str) -> str:
    """The one-character delimiter a user typed (`;`, `|`, a real tab, or `tab` or backslash-t for one);
    BadInput otherwise."""
    delimiter = DELIMITER_NAMES.get(text.lower(), text)
    if len(delimiter) != 1 or delimiter in NOT_DELIMITERS:
        raise BadInput(
            f"--delimiter {text!r} is not one character a CSV can be split on",
            hint="pass one character such as ',' ';' or '|', or `tab` (also written \\t) for a tab",
        )
    return delimiter


def delimiter_option(delimiter: str) -> str:
    """The delimiter as the user types it back on a command line (a hint's `--delimiter X`)."""
    return "tab" if delimiter == "\t" else repr(delimiter)


def _guess_delimiter(path: Path, expected: str) -> str | None:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        sample = handle.read(8192)
    try:
        found = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return None
    return found if found != expected else None


def _check_size(path: Path, max_bytes: int) -> None:
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"dataset {path} is empty", hint="commit the data file with a header row and data rows")
    if size > max_bytes:
        raise DataError(
            f"dataset {path} is {size} bytes, over data.max_bytes ({max_bytes} bytes)",
            hint="check data.path names the right file, or raise data.max_bytes in mlci.yaml (it is read in memory)",
        )


def _check_header(path: Path, delimiter: str) -> None:
    """Refuse duplicate column names, read from the header row itself: pandas would rename the second
    `x` to `x.1` (which may itself be a real column) and go on silently."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        try:
            header = next(csv.reader(handle, delimiter=delimiter, skipinitialspace=True), [])
        except csv.Error as error:
            raise DataError(f"dataset {path} cannot be parsed as CSV: {error}") from None
    names = [name.strip() for name in header]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise DataError(
            f"dataset {path} has duplicate column name(s): {', '.join(map(repr, duplicated))}",
            hint="give every column of the header row its own name",
        )


def read_csv(path: Path, delimiter: str, max_bytes: int = 512 * 1024 * 1024) -> pd.DataFrame:
    """The file as an all-text frame. Only an empty field is missing: a category such as `NA`,
    `None` or `null` stays a category, as the API and the dashboard read it."""
    if not path.is_file():
        raise DataError(f"dataset {path} not found", hint="check data.path in mlci.yaml (relative to the config file)")
    _check_size(path, max_bytes)
    _check_header(path, delimiter)
    try:
        # Everything as text first: type checks below must see the raw values to report them.
        frame = pd.read_csv(
            path, sep=delimiter, dtype=str, skipinitialspace=True, keep_default_na=False, na_values=[""]
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"dataset {path} has no header row") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"dataset {path} cannot be parsed as CSV: {str(error).strip()}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _check_numeric(name: str, raw: pd.Series, config: Config, problems: list[str]) -> None:
    feature = config.data.features[name]
    values = pd.to_numeric(raw, errors="coerce")
    bad = raw.notna() & values.isna()
    infinite = values.notna() & ~np.isfinite(values.astype(float))
    bad |= infinite
    if bad.any():
        examples = ", ".join(repr(v) for v in raw[bad].unique()[:MAX_EXAMPLES])
        # R and spreadsheets write missing numbers as NA/#N/A; here only an empty field is missing.
        markers = set(raw[bad].str.strip().str.upper()) & MISSING_MARKERS
        note = "; leave missing values empty (only an empty field is missing)" if markers else ""
        problems.append(
            f"column {name!r}: {int(bad.sum())} non-numeric value(s) such as {examples} (lines {_rows(bad)}){note}"
        )
    finite = values.where(~bad)
    if feature.min is not None and (low := finite < feature.min).any():
        problems.append(
            f"column {name!r}: {int(low.sum())} value(s) below min {feature.min:g}, "
            f"lowest {finite[low].min():g} (lines {_rows(low)})"
        )
    if feature.max is not None and (high := finite > feature.max).any():
        problems.append(
            f"column {name!r}: {int(high.sum())} value(s) above max {feature.max:g}, "
            f"highest {finite[high].max():g} (lines {_rows(high)})"
        )


def _check_categorical(name: str, raw: pd.Series, config: Config, problems: list[str]) -> None:
    allowed = config.data.features[name].categories
    if allowed is None:
        return
    outside = raw.notna() & ~raw.isin(allowed)
    if outside.any():
        examples = ", ".join(repr(v) for v in raw[outside].unique()[:MAX_EXAMPLES])
        problems.append(
            f"column {name!r}: {int(outside.sum())} value(s) outside the allowed categories "
            f"{allowed}: {examples} (lines {_rows(outside)})"
        )


def _check_target(target: pd.Series, config: Config, problems: list[str]) -> None:
    name = config.data.target
    what = "value(s)" if config.task == REGRESSION else "label(s)"
    if target.isna().any():
        problems.append(f"target {name!r}: {int(target.isna().sum())} missing {what} (lines {_rows(target.isna())})")
    if config.task == REGRESSION:
        values = pd.to_numeric(target, errors="coerce")
        bad = target.notna() & (values.isna() | ~np.isfinite(values.astype(float)))
        if bad.any():
            examples = ", ".join(repr(v) for v in target[bad].unique()[:MAX_EXAMPLES])
            problems.append(
                f"target {name!r}: {int(bad.sum())} value(s) that are not finite numbers such as {examples} "
                f"(lines {_rows(bad)}); a regression predicts a number (task: classification predicts a class)"
            )
        elif values.dropna().nunique() < 2:
            problems.append(f"target {name!r}: every value is the same: there is nothing to learn")
        return
    classes = target.dropna().unique()
    if len(classes) < 2:
        shown = f"only {classes[0]!r}" if len(classes) else "no labels"
        problems.append(f"target {name!r}: at least two classes are needed to train a classifier, found {shown}")


def validate_frame(frame: pd.DataFrame, config: Config, source: str) -> list[str]:
    """All the problems of a raw (all-text) frame against the config, as lines for a human."""
    data = config.data
    expected = [*data.features, data.target]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        present = ", ".join(frame.columns[:8]) + (" …" if len(frame.columns) > 8 else "")
        return [f"missing column(s): {', '.join(missing)} (the file has: {present})"]
    problems: list[str] = []
    if len(frame) < data.min_rows:
        problems.append(f"{len(frame)} data row(s), at least {data.min_rows} required (data.min_rows)")
    for name, feature in data.features.items():
        raw = frame[name]
        if feature.type == "numeric":
            _check_numeric(name, raw, config, problems)
        else:
            _check_categorical(name, raw, config, problems)
        if raw.isna().any() and not data.nullable(name):
            problems.append(
                f"column {name!r}: {int(raw.isna().sum())} missing value(s) (lines {_rows(raw.isna())}); "
                f"fill them, or set data.missing: impute (or nullable: true on the feature)"
            )
    _check_target(frame[data.target], config, problems)
    return problems


def load(config: Config) -> Dataset:
    """Read, validate and fingerprint the dataset named in the config; raise DataError listing every problem."""
    path = config.data_path
    frame = read_csv(path, config.data.delimiter, config.data.max_bytes)
    problems = validate_frame(frame, config, str(path))
    if problems:
        hint = "fix the data or mlci.yaml, then run again"
        if len(frame.columns) == 1 and (found := _guess_delimiter(path, config.data.delimiter)):
            hint = (
                f"the file looks delimited by {found!r}, not {config.data.delimiter!r}: set data.delimiter in mlci.yaml"
            )
        raise DataError(f"dataset {path} failed validation ({len(problems)} problem(s)):", details=problems, hint=hint)
    fingerprint = Fingerprint(
        path=str(config.data.path), sha256=sha256_file(path), rows=len(frame), columns=len(frame.columns)
    )
    return Dataset(frame=frame, fingerprint=fingerprint)
