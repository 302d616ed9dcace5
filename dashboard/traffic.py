"""Live traffic from the API's Prometheus metrics: samples, rates, latency quantiles, switches.

No Streamlit here. The Live model page scrapes GET /metrics (through the router: only the live
colour answers, its workers already summed) every few seconds; each scrape becomes a `Sample` of
the counters this page needs, kept in a bounded, thread-safe series per API URL (one per dashboard
process, shared by its sessions). Rates come from the difference of two consecutive samples, as
Prometheus' `rate()` does:

- a counter that went down was reset (a restarted process, or a slot whose counters start again):
  its increase is its new value, never a negative rate;
- an interval across a blue/green switch (the served model or colour changed) mixes two processes'
  counters, so it gives no rate at all: the chart shows a gap and a marker there.

Only the metric families the page draws are read (a regression's predicted-value histogram instead of
the predictions by label), the exposition is bounded in bytes and in
series, and nothing in it is evaluated.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

PREDICT_ROUTE = "/predict"
REQUESTS = "mlci_requests_total"
BUCKETS = "mlci_request_duration_seconds_bucket"
PREDICTIONS = "mlci_predictions_total"
VALUES = "mlci_prediction_value_bucket"  # a regression's predicted values, in buckets of the target's deciles
MODEL_INFO = "mlci_model_info"
WANTED = (REQUESTS, BUCKETS, PREDICTIONS, VALUES, MODEL_INFO)
MAX_SERIES = 2000  # label sets kept from one scrape: far above what the API exports, bounds a hostile one
MAX_SAMPLES = 400  # per API URL: 20 minutes at the default 3 s refresh
WINDOW_SECONDS = 600.0  # what the charts show: the last 10 minutes
MAX_URLS = 16  # API URLs remembered by one dashboard process

# `name{label="value",...} 12.5` (optionally a timestamp after the value); label values may hold \" and \\.
_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    """One scrape: when, which model answered it, and the counters the charts need."""

    at: float  # time.time() of the scrape
    model: tuple[str, str]  # (version, colour) of the served model: a change marks a switch
    requests: dict[tuple[str, str, str], float] = field(default_factory=dict)  # (status, model_version, method)
    buckets: dict[tuple[str, str, float], float] = field(default_factory=dict)  # (status, model_version, le)
    predictions: dict[tuple[str, str], float] = field(default_factory=dict)  # (label, model_version)
    values: dict[tuple[str, float], float] = field(default_factory=dict)  # (model_version, le): a regression's
    served: frozenset[str] = frozenset()  # model versions /metrics itself says it serves (mlci_model_info)

    @property
    def consistent(self) -> bool:
        """Whether the counters are the model's that `model` names: GET /version and GET /metrics are two
        requests, and a switch between them would file one process's counters under the other's model."""
        return not self.served or self.model[0] in self.served


@dataclass(frozen=True)
class Point:
    """The traffic between two samples, per second; None where the interval gives no figure."""

    at: float
    rps: float
    error_rate: float | None  # share of /predict answered 5xx
    rejected_rate: float | None  # share refused 4xx (the caller's input)
    p50_ms: float | None
    p99_ms: float | None
    classes: dict[str, float]  # predicted label -> predictions per second
    values: dict[float, float] = field(default_factory=dict)  # a regression: le -> predicted values below it, added


@dataclass(frozen=True)
class Switch:
    at: float
    before: tuple[str, str]
    after: tuple[str, str]

    @property
    def text(self) -> str:
        return f"v{self.before[0]} ({self.before[1]}) → v{self.after[0]} ({self.after[1]})"


@dataclass(frozen=True)
class Traffic:
    points: list[Point]
    switches: list[Switch]


def _labels(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    return {key: value.replace('\\"', '"').replace("\\\\", "\\") for key, value in _LABEL.findall(text)}


def parse(text: str, at: float, model: tuple[str, str]) -> Sample:
    """The page's counters from a Prometheus text exposition (other families and bad lines are skipped)."""
    requests: dict[tuple[str, str, str], float] = {}
    buckets: dict[tuple[str, str, float], float] = {}
    predictions: dict[tuple[str, str], float] = {}
    values: dict[tuple[str, float], float] = {}
    served: set[str] = set()
    kept = 0
    for line in text.splitlines():
        if not line.startswith(WANTED) or kept >= MAX_SERIES:
            continue
        match = _LINE.match(line.strip())
        if match is None:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        if not math.isfinite(value):
            continue
        labels = _labels(match["labels"])
        name = match["name"]
        version = labels.get("model_version", "")
        if name in (REQUESTS, BUCKETS) and labels.get("route") != PREDICT_ROUTE:
            continue  # the dashboard's own /version and /metrics calls are not traffic
        kept += 1
        if name == REQUESTS:
            key = (labels.get("status", ""), version, labels.get("method", ""))
            requests[key] = requests.get(key, 0.0) + value
        elif name in (BUCKETS, VALUES):
            try:
                le = float(labels.get("le", ""))
            except ValueError:
                continue
            if name == VALUES:
                values[(version, le)] = values.get((version, le), 0.0) + value
                continue
            bucket = (labels.get("status", ""), version, le)
            buckets[bucket] = buckets.get(bucket, 0.0) + value
        elif name == PREDICTIONS:
            label = (labels.get("label", ""), version)
            predictions[label] = predictions.get(label, 0.0) + value
        elif name == MODEL_INFO and value > 0:
            served.add(version)
    return Sample(
        at=at,
        model=model,
        requests=requests,
        buckets=buckets,
        predictions=predictions,
        values=values,
        served=frozenset(served),
    )


def increase(before: dict[Any, float], after: dict[Any, float]) -> dict[Any, float]:
    """Per series, how much a counter grew; a series that went down (or is new) was reset: its value."""
    out = {}
    for key, value in after.items():
        old = before.get(key, 0.0)
        out[key] = value - old if value >= old else value
    return out


def _histogram_increase(before: dict[Any, float], after: dict[Any, float]) -> dict[float, float]:
    """Bucket increases summed over the other labels (the key's last item is `le`); a series with any bucket
    down is reset whole."""
    series: dict[tuple[Any, ...], dict[float, float]] = {}
    for key, value in after.items():
        series.setdefault(tuple(key[:-1]), {})[key[-1]] = value
    out: dict[float, float] = {}
    for head, now in series.items():
        old = {le: before.get((*head, le), 0.0) for le in now}
        reset = any(now[le] < old[le] for le in now)
        for le, value in now.items():
            out[le] = out.get(le, 0.0) + (value if reset else value - old[le])
    return out


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile: linear within the bucket holding rank q; None with no observation.

    `buckets` maps each upper bound (le, +Inf included) to the cumulative count below it. A rank in the
    +Inf bucket answers the highest finite bound (the histogram knows nothing above it).
    """
    bounds = sorted(buckets)
    if not bounds or not math.isinf(bounds[-1]):
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds[:-1]:
        count = buckets[le]
        if count >= rank:  # the first bucket reaching the rank (a torn scrape's counts are taken as they come)
            return le if count == below else lower + (le - lower) * (rank - below) / (count - below)
        lower, below = le, count
    return lower  # the rank is in the +Inf bucket


def point(before: Sample, after: Sample) -> Point | None:
    """The traffic between two consecutive samples; None across a switch or a non-positive interval."""
    seconds = after.at - before.at
    if seconds <= 0 or before.model != after.model:
        return None
    grown = increase(before.requests, after.requests)
    total = sum(grown.values())
    errors = sum(v for (status, _, _), v in grown.items() if status.startswith("5"))
    rejected = sum(v for (status, _, _), v in grown.items() if status.startswith("4"))
    buckets = _histogram_increase(before.buckets, after.buckets)
    p50, p99 = quantile(0.5, buckets), quantile(0.99, buckets)
    classes: dict[str, float] = {}
    for (label, _), value in increase(before.predictions, after.predictions).items():
        classes[label] = classes.get(label, 0.0) + value / seconds
    return Point(
        at=after.at,
        rps=total / seconds,
        error_rate=errors / total if total else None,
        rejected_rate=rejected / total if total else None,
        p50_ms=p50 * 1000 if p50 is not None else None,
        p99_ms=p99 * 1000 if p99 is not None else None,
        classes=classes,
        values=_histogram_increase(before.values, after.values),
    )


def traffic(samples: list[Sample], window: float = WINDOW_SECONDS, now: float | None = None) -> Traffic:
    """Points and switches of the last `window` seconds of a series of samples (oldest first)."""
    start = (time.time() if now is None else now) - window
    points: list[Point] = []
    switches: list[Switch] = []
    for before, after in itertools.pairwise(samples):
        if after.at < start:
            continue
        if before.model != after.model:
            switches.append(Switch(at=after.at, before=before.model, after=after.model))
        elif (p := point(before, after)) is not None:
            points.append(p)
    return Traffic(points=points, switches=switches)


def served_values(data: Traffic) -> dict[float, float]:
    """A regression's predicted values over the window, as cumulative buckets (le -> count below it): the
    points since the last switch only (another model has other buckets)."""
    since = max((s.at for s in data.switches), default=-math.inf)
    out: dict[float, float] = {}
    for p in data.points:
        if p.at > since:
            for le, count in p.values.items():
                out[le] = out.get(le, 0.0) + count
    return out


class Series:
    """The samples of one API URL: bounded, thread-safe (Streamlit runs each session in a thread)."""

    def __init__(self, max_samples: int = MAX_SAMPLES):
        self._samples: deque[Sample] = deque(maxlen=max_samples)
        self._lock = threading.Lock()

    def due(self, now: float, min_interval: float) -> bool:
        """Whether a new scrape is worth it: several sessions refreshing together share one scrape."""
        with self._lock:
            return not self._samples or now - self._samples[-1].at >= min_interval

    def add(self, sample: Sample) -> None:
        with self._lock:
            if self._samples and sample.at <= self._samples[-1].at:
                return  # a late scrape from a slower session: keep the series in time order
            self._samples.append(sample)

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)


_SERIES: dict[str, Series] = {}
_SERIES_LOCK = threading.Lock()


def series(api_url: str) -> Series:
    """The process-wide series of one API URL (the oldest URL is forgotten past MAX_URLS)."""
    with _SERIES_LOCK:
        found = _SERIES.get(api_url)
        if found is None:
            if len(_SERIES) >= MAX_URLS:
                _SERIES.pop(next(iter(_SERIES)))
            found = _SERIES[api_url] = Series()
        return found
