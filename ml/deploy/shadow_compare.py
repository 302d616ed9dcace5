"""Shadow traffic, the comparison: production's and the candidate's answers to the same mirrored
requests, joined by request id, and the one line the approver reads. Decisions only, no I/O: the
answers come from ml/deploy/shadow_answers.py, the switching and the report's assembly from ml/deploy/shadow.py."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

P99_MIN_ANSWERS = 100  # below this, a p99 is the slowest answer or two: noise, not a percentile


# ---- the comparison ----------------------------------------------------------------------------


@dataclass
class Comparison:
    """Per request id: the candidate's answer next to production's. Rows of a batch count one by one;
    a request id counts once (the first answer each ring holds for it: a replayed id adds nothing)."""

    mirrored: int = 0  # requests the candidate answered as mirrored copies
    compared: int = 0  # mirrored requests both sides answered 200, joined by request id
    unmatched: int = 0  # mirrored requests production's ring no longer (or never) held
    rows: int = 0  # prediction rows compared
    # Classifier: the share of rows with the same label. Regression: the share of rows whose values differ
    # by at most `tolerance` (environments.<source>.shadow.tolerance, in the target's units).
    agreement: float | None = None
    mean_probability_diff: float | None = None  # mean over rows of the largest per-class difference
    max_probability_diff: float | None = None
    candidate_p50_ms: float | None = None
    candidate_p99_ms: float | None = None  # over all mirrored answers; the summary shows it from 100 on
    candidate_errors: int = 0  # a 5xx, or a refusal (non-200) of a request production answered 200
    production_errors: int = 0  # production's own 5xx on the mirrored requests: not the candidate's fault
    production_p50_ms: float | None = None
    task: str = "classification"  # regression: the answers were values, compared by their difference
    tolerance: float | None = None
    mean_abs_diff: float | None = None  # regression: mean |candidate - production| over rows
    max_abs_diff: float | None = None


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: a p99 is a latency someone actually had)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)], 3)


def _row_diff(a: dict[str, float], b: dict[str, float]) -> float:
    return max(abs(a.get(c, 0.0) - b.get(c, 0.0)) for c in set(a) | set(b)) if a or b else 0.0


def _once(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first answer per request id (pages come oldest first); an answer without an id is its own."""
    seen: set[str] = set()
    kept = []
    for answer in answers:
        request_id = answer.get("id")
        if request_id:
            if request_id in seen:
                continue
            seen.add(request_id)
        kept.append(answer)
    return kept


def _candidate_error(status: int, production_status: int | None) -> bool:
    """A 5xx is always the candidate's error; another refusal only where production answered 200 (both
    refusing a malformed request is agreement, and production failing is production's error)."""
    return status >= 500 or (status != 200 and production_status == 200)


def _row_pairs(ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[str, list[tuple[Any, Any]]] | None:
    """The rows of one request side by side, as ("values", [(ours, theirs)]) or ("labels", [((label, p),
    (label, p))]); None when a side kept no rows (a body too big) or the two differ in shape."""
    if ours.get("values") is not None or theirs.get("values") is not None:
        a, b = ours.get("values") or [], theirs.get("values") or []
        return ("values", list(zip(a, b))) if a and len(a) == len(b) else None
    a, b = ours.get("labels") or [], theirs.get("labels") or []
    if not a or len(a) != len(b):
        return None
    return "labels", list(zip(zip(a, ours["probabilities"]), zip(b, theirs["probabilities"])))


def compare(
    production: list[dict[str, Any]],
    candidate: list[dict[str, Any]],
    tolerance: float | None = None,
    task: str = "classification",
) -> Comparison:
    """Join the two rings' answers on request id; only the candidate's mirrored answers count.

    Classifiers' answers compare by label (agreement) and probabilities; regressions' by the difference
    of the values: within `tolerance` counts as agreeing, with the mean and largest absolute difference."""
    by_id = {a["id"]: a for a in _once(production) if a.get("id")}
    mirrored = _once([a for a in candidate if a.get("shadow")])
    result = Comparison(mirrored=len(mirrored), task=task, tolerance=tolerance)
    agree, diffs, latencies, production_ms = 0, [], [], []
    value_diffs: list[float] = []
    for answer in mirrored:
        latencies.append(float(answer["ms"]))
        theirs = by_id.get(answer["id"]) if answer.get("id") else None
        result.candidate_errors += _candidate_error(answer["status"], None if theirs is None else theirs["status"])
        if theirs is None:
            result.unmatched += 1
            continue
        production_ms.append(float(theirs["ms"]))
        result.production_errors += theirs["status"] >= 500
        if answer["status"] != 200 or theirs["status"] != 200:
            continue
        pairs = _row_pairs(answer, theirs)
        if pairs is None:
            continue  # a body too big to keep on one side: nothing to compare row by row
        result.compared += 1
        kind, rows = pairs
        if kind == "values":
            value_diffs.extend(abs(float(a) - float(b)) for a, b in rows)
            continue
        for (label, p), (their_label, q) in rows:
            agree += label == their_label
            diffs.append(_row_diff(p, q))
    if value_diffs:
        result.rows = len(value_diffs)
        within = sum(d <= (tolerance or 0.0) for d in value_diffs)
        result.agreement = round(within / len(value_diffs), 6)
        result.mean_abs_diff = round(sum(value_diffs) / len(value_diffs), 6)
        result.max_abs_diff = round(max(value_diffs), 6)
    elif diffs:
        result.rows = len(diffs)
        result.agreement = round(agree / len(diffs), 6)
        result.mean_probability_diff = round(sum(diffs) / len(diffs), 6)
        result.max_probability_diff = round(max(diffs), 6)
    result.candidate_p50_ms, result.candidate_p99_ms = percentile(latencies, 50), percentile(latencies, 99)
    result.production_p50_ms = percentile(production_ms, 50)
    return result


# ---- the report --------------------------------------------------------------------------------


@dataclass
class ShadowReport:
    env: str  # where the candidate runs (the shadow)
    source: str  # whose traffic is mirrored
    share: float
    on: bool  # the switch file is present on the source's router
    candidate_version: str | None
    production_version: str | None
    comparison: Comparison = field(default_factory=Comparison)
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(report: ShadowReport) -> str:
    """One line for the approval message and build logs: whether the mirror is on, how many requests
    the figures rest on, and a p99 only where there are enough answers for one."""
    c = report.comparison
    head = f"shadow {report.source} -> {report.env} (v{report.candidate_version} vs v{report.production_version})"
    if not report.on:
        head = f"mirror OFF: {head}"
    errors = f"{c.candidate_errors} candidate errors, {c.production_errors} production errors"
    if not c.compared:
        return f"{head}: no compared request yet ({c.mirrored} mirrored, {c.unmatched} unmatched, {errors})"
    if c.task == "regression":
        figures = (
            f"{c.agreement:.2%} of {c.rows} predictions within {c.tolerance or 0:g}, "
            f"|difference| mean {c.mean_abs_diff:.4g} max {c.max_abs_diff:.4g}"
        )
    else:
        figures = (
            f"agreement {c.agreement:.2%}, "
            f"probability diff mean {c.mean_probability_diff:.4f} max {c.max_probability_diff:.4f}"
        )
    return (
        f"{head}: {c.compared} requests compared of {c.mirrored} mirrored, {c.unmatched} unmatched, {figures}, "
        f"candidate p50 {c.candidate_p50_ms} ms {p99_text(c)}, {errors}"
    )


def p99_text(c: Comparison) -> str:
    """The candidate's p99, or why there is none: it rests on every mirrored answer, and needs 100."""
    if c.candidate_p99_ms is None or c.mirrored < P99_MIN_ANSWERS:
        return f"p99 n/a (<{P99_MIN_ANSWERS} answers)"
    return f"p99 {c.candidate_p99_ms} ms"
