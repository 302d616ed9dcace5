"""Input drift: running counts of what the API is asked, per feature and bin, and PSI against training.

The bundle's distribution.json holds each feature's training distribution (ml/learn/profile_distribution.py);
every record the API answers adds one to the bin of each of its features. Only those counts are kept,
never a request. They are a Prometheus counter (`mlci_drift_inputs_total{feature,bin}`), so with several
uvicorn workers each writes its own file (prometheus multiprocess mode) and a read sums every worker's:
GET /drift and the gauges on /metrics are computed at read time from the summed counts, the same figure
whichever worker answers. A worker adds to a local array on the hot path and moves it into the counter
at most every FLUSH_SECONDS (and when it answers a read, and when it stops), so figures lag by ~1 s.

PSI (population stability index) of a feature: sum over its bins of (live - train) * ln(live / train),
shares floored at EPSILON so an empty bin counts as rare rather than infinite. A feature is drifted when
its PSI is over its threshold (`monitoring.drift.psi_threshold`, per feature if set) and at least
`min_records` records were counted: PSI on a handful of requests is noise.

The figures cover a rolling window (`monitoring.drift.window_minutes`): counts since the API started would
let weeks of normal traffic hide a sudden shift for days (api/drift_window.py keeps the window). Until the
worker has lived a whole window the figures are since the worker started (the summed counts then are its
baseline), and the report says so; the since-start totals (every worker's since the server started) too.

Bins, in counter order: numeric features' value bins (open-ended first and last), then "missing";
categorical features' categories, then "other" (any other or unseen value), then "missing".
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from mlci.api.drift_window import DEFAULT_WINDOW_MINUTES, CountHistory, WindowStart, windowed
from mlci.contract.bundle import MISSING_CATEGORY, Bundle
from mlci.contract.bundle_schema import CategoricalBins, NumericBins

FLUSH_SECONDS = 1.0  # how late a worker's counts may reach the shared counter (see DriftMonitor.flush)
EPSILON = 1e-4  # share given to an empty bin (live or training): PSI stays finite, an empty bin stays rare
COUNTER = "mlci_drift_inputs"
NO_DISTRIBUTION = "the bundle has no training distribution (distribution.json): package it again with mlci package"


@dataclass(frozen=True)
class FeatureBins:
    """One feature's bins as the hot path uses them: how to place a value, and the training shares."""

    name: str
    type: str
    labels: tuple[str, ...]  # one per bin, for people: "[1.5, 2.5)", "north", "other", "missing"
    train: np.ndarray  # training share per bin
    threshold: float
    edges: np.ndarray | None = None  # numeric
    sorted_categories: np.ndarray | None = None  # categorical, sorted for searchsorted
    category_bin: np.ndarray | None = None  # bin of each sorted category

    @classmethod
    def from_entry(cls, entry: NumericBins | CategoricalBins, threshold: float) -> FeatureBins:
        if isinstance(entry, NumericBins):
            edges = np.asarray(entry.edges, dtype=np.float64)
            bounds = ["-inf", *(f"{e:.6g}" for e in entry.edges), "+inf"]
            labels = (*(f"[{a}, {b})" for a, b in itertools.pairwise(bounds)), "missing")
            train = np.asarray([*entry.shares, entry.missing], dtype=np.float64)
            return cls(entry.name, entry.type, labels, train, threshold, edges=edges)
        order = np.argsort(np.asarray(entry.categories, dtype=object)) if entry.categories else np.empty(0, int)
        categories = np.asarray(entry.categories, dtype=object)[order] if entry.categories else np.empty(0, object)
        labels = (*entry.categories, "other", "missing")
        train = np.asarray([*entry.shares, entry.other, entry.missing], dtype=np.float64)
        return cls(entry.name, entry.type, labels, train, threshold, sorted_categories=categories, category_bin=order)

    @property
    def size(self) -> int:
        return len(self.labels)

    def bin_of(self, column: np.ndarray) -> np.ndarray:
        """The bin index of each value of a model input column (NaN / "" are missing)."""
        values = column.ravel()
        missing = self.size - 1
        if self.edges is not None:
            absent = np.isnan(values)
            bins = np.searchsorted(self.edges, np.where(absent, 0.0, values), side="right")
            return np.where(absent, missing, bins)
        assert self.sorted_categories is not None and self.category_bin is not None
        other = self.size - 2
        if self.sorted_categories.size == 0:
            return np.where(values == MISSING_CATEGORY, missing, other)
        position = np.minimum(np.searchsorted(self.sorted_categories, values), self.sorted_categories.size - 1)
        known = self.sorted_categories[position] == values
        bins = np.where(known, self.category_bin[position], other)
        return np.where(values == MISSING_CATEGORY, missing, bins)


def psi(live_counts: np.ndarray, train_shares: np.ndarray) -> float:
    """Population stability index of live counts against training shares (both floored at EPSILON)."""
    live = np.maximum(live_counts / live_counts.sum(), EPSILON)
    train = np.maximum(train_shares, EPSILON)
    return float(np.sum((live - train) * np.log(live / train)))


@dataclass(frozen=True)
class BinShare:
    label: str
    training: float
    live: float | None


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    type: str
    psi: float | None  # over the window; None until a record was counted in it
    threshold: float
    drifted: bool  # over the window
    bins: list[BinShare] = field(default_factory=list)  # live shares over the window
    psi_total: float | None = None  # since the API started, as before the window


@dataclass(frozen=True)
class DriftReport:
    """What GET /drift answers."""

    available: bool
    model_version: str
    records: int = 0
    min_records: int = 0
    enough_records: bool = False
    psi_threshold: float | None = None
    drifted: list[str] = field(default_factory=list)
    features: list[FeatureDrift] = field(default_factory=list)
    reason: str | None = None
    scope: str = ""  # "the last 60 min, ..." or "since start, 12 min ago, ...": what records, PSI, drifted cover
    records_total: int = 0  # since the API started
    window_minutes: int = DEFAULT_WINDOW_MINUTES
    window_seconds: float = 0.0  # the span the windowed figures cover (the process's age until a full window)
    window_full: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DriftMonitor:
    """Counts live inputs per feature and bin (hot path), and turns the summed counts into PSI (read path)."""

    def __init__(self, bundle: Bundle, registry: CollectorRegistry, clock: Callable[[], float] = time.monotonic):
        self.model_version = bundle.version
        self._clock = clock  # injected by tests, so a window of hours runs in no time
        settings = bundle.metadata.get("drift") or {}
        self.psi_threshold = float(settings.get("psi_threshold", 0.2))
        self.min_records = int(settings.get("min_records", 500))
        self.window_minutes = int(settings.get("window_minutes", DEFAULT_WINDOW_MINUTES))
        per_feature = settings.get("features") or {}
        self.features: list[FeatureBins] = []
        if bundle.distribution is not None:
            self.features = [
                FeatureBins.from_entry(entry, float(per_feature.get(entry.name, self.psi_threshold)))
                for entry in bundle.distribution.features
            ]
        self.counter = Counter(
            COUNTER,
            "Records answered, by feature and training bin",
            ["feature", "bin", "model_version"],
            registry=registry,
        )
        # Every bin of every feature has one slot of a flat vector, children made once: the hot path counts a
        # batch with one bincount and only adds to the bins it hit.
        sizes = [f.size for f in self.features]
        self._offsets = np.cumsum([0, *sizes])[:-1].astype(np.int64)
        self._children = [
            self.counter.labels(f.name, str(i), self.model_version) for f in self.features for i in range(f.size)
        ]
        self._numeric = [k for k, f in enumerate(self.features) if f.edges is not None]
        self._categorical = [k for k, f in enumerate(self.features) if f.edges is None]
        self._numeric_names = [self.features[k].name for k in self._numeric]
        # The numeric features' edges as one matrix, padded with +inf: a value's bin is the number of edges
        # at or below it (searchsorted side="right"), for all numeric features at once.
        edges = [f.edges for f in self.features if f.edges is not None]
        self._edges = np.full((len(edges), max((e.size for e in edges), default=0)), np.inf)
        for row, feature_edges in enumerate(edges):
            self._edges[row, : feature_edges.size] = feature_edges
        self._numeric_missing = np.array([self.features[k].size - 1 for k in self._numeric], dtype=np.int64)
        self._numeric_offsets = self._offsets[self._numeric]
        self._pending = np.zeros(len(self._children), dtype=np.int64)  # counted here, not yet in the counter
        self._next_flush = self._clock() + FLUSH_SECONDS
        self._index = {(f.name, str(i)): (k, i) for k, f in enumerate(self.features) for i in range(f.size)}
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        # The baseline is read now, not at the first sample: the other workers' counter files are on disk
        # already, and by the first sample this worker and the others will have counted records that belong
        # to its window. Summed counts include every worker's since the server started; a worker uvicorn
        # respawned must not report them as its own first window.
        self.history = CountHistory(self.window_minutes * 60.0, self._clock(), self.counts())
        self.gauges = CollectorRegistry(auto_describe=False)
        self.gauges.register(_GaugeCollector(self))

    @property
    def available(self) -> bool:
        return bool(self.features)

    def observe(self, columns: dict[str, np.ndarray]) -> None:
        """Add the answered records (model input columns) to this worker's pending counts: a few numpy calls
        per batch, whatever its size and the number of features (about 30 us for one 30-feature record)."""
        if not self.features:
            return
        hits = []
        if self._numeric:
            # Columns are [N, 1] (Bundle.columns_from_records): side by side, one row per record.
            x = np.concatenate([columns[name] for name in self._numeric_names], axis=1)
            bins = (x[:, :, None] >= self._edges[None, :, :]).sum(axis=2)
            hits.append((np.where(np.isnan(x), self._numeric_missing, bins) + self._numeric_offsets).ravel())
        for k in self._categorical:
            hits.append(self.features[k].bin_of(columns[self.features[k].name]) + self._offsets[k])
        self._pending += np.bincount(np.concatenate(hits), minlength=self._pending.size)
        if self._clock() >= self._next_flush:
            self.flush()

    def flush(self) -> None:
        """Move this worker's pending counts into the shared counter (where other workers read them).

        Deferred because a counter increment costs about a microsecond per bin (more in multiprocess mode,
        a locked write to the worker's file): batching them into one pass per FLUSH_SECONDS keeps the hot
        path to a few numpy calls. Runs in the event loop only (observe, the flusher task, the read path),
        so it never races with itself."""
        self._next_flush = self._clock() + FLUSH_SECONDS
        pending, self._pending = self._pending, np.zeros_like(self._pending)
        for i in np.flatnonzero(pending):
            self._children[i].inc(int(pending[i]))

    async def flush_periodically(self) -> None:
        """Flush every FLUSH_SECONDS, so an idle worker's last counts reach the readers too; snapshot the
        summed counts when the window's step is due."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.flush()
            self.sample()

    def sample(self) -> None:
        """Add the summed counts to the window's history, when a step is due (cheap otherwise)."""
        now = self._clock()
        if self.available and self.history.due(now):
            self.history.add(now, self.counts())

    def counts(self) -> list[np.ndarray]:
        """Counts per feature and bin, summed over every worker of this server."""
        totals = [np.zeros(f.size, dtype=np.float64) for f in self.features]
        for metric in self._collect():
            for sample in metric.samples:
                labels = sample.labels
                if not sample.name.endswith("_total") or labels.get("model_version") != self.model_version:
                    continue
                where = self._index.get((labels.get("feature", ""), labels.get("bin", "")))
                if where is not None:
                    totals[where[0]][where[1]] += sample.value
        return totals

    def _collect(self):
        if self.multiprocess_dir is None:
            return self.counter.collect()
        # Only the counter files: the histograms are many and not needed here.
        files = glob.glob(os.path.join(self.multiprocess_dir, "counter_*.db"))
        return [m for m in multiprocess.MultiProcessCollector.merge(files, accumulate=True) if m.name == COUNTER]

    def report(self) -> DriftReport:
        if not self.available:
            return DriftReport(available=False, model_version=self.model_version, reason=NO_DISTRIBUTION)
        self.flush()  # this worker's own counts are current; the others' are at most FLUSH_SECONDS late
        totals = self.counts()
        start = self.history.start(self._clock())
        counts = windowed(totals, start.counts)
        records = int(counts[0].sum())
        enough = records >= self.min_records
        features = [_feature_drift(f, c, t, enough) for f, c, t in zip(self.features, counts, totals)]
        return DriftReport(
            available=True,
            model_version=self.model_version,
            records=records,
            min_records=self.min_records,
            enough_records=enough,
            psi_threshold=self.psi_threshold,
            drifted=[f.name for f in features if f.drifted],
            features=features,
            scope=self._scope(start),
            records_total=int(totals[0].sum()),
            window_minutes=self.window_minutes,
            window_seconds=round(start.seconds, 1),
            window_full=start.full,
        )

    def _scope(self, start: WindowStart) -> str:
        if start.full:
            return f"the last {self.window_minutes} min, summed over this API's workers"
        return (
            f"since start, {int(start.seconds // 60)} min ago (less than the {self.window_minutes} min window), "
            "summed over this API's workers"
        )

    def exposition(self) -> bytes:
        """The drift gauges in Prometheus text, to append to /metrics."""
        return generate_latest(self.gauges) if self.available else b""


def _psi_or_none(counts: np.ndarray, feature: FeatureBins) -> float | None:
    return round(psi(counts, feature.train), 6) if counts.sum() else None


def _feature_drift(feature: FeatureBins, counts: np.ndarray, totals: np.ndarray, enough: bool) -> FeatureDrift:
    """One feature over the window (`counts`), with its since-start PSI (`totals`) alongside."""
    total = counts.sum()
    value = _psi_or_none(counts, feature)
    live = counts / total if total else [None] * feature.size
    return FeatureDrift(
        name=feature.name,
        type=feature.type,
        psi=value,
        threshold=feature.threshold,
        drifted=bool(enough and value is not None and value > feature.threshold),
        bins=[
            BinShare(label, round(float(t), 6), None if s is None else round(float(s), 6))
            for label, t, s in zip(feature.labels, feature.train, live)
        ],
        psi_total=_psi_or_none(totals, feature),
    )


class _GaugeCollector:
    """Gauges computed at scrape time from the summed counts over the window, so an alert can fire from
    /metrics alone: `mlci_feature_drifted == 1`, or `mlci_feature_drift_psi > mlci_feature_drift_threshold`."""

    def __init__(self, monitor: DriftMonitor):
        self.monitor = monitor

    def collect(self):
        report = self.monitor.report()
        version = report.model_version
        psi_ = GaugeMetricFamily(
            "mlci_feature_drift_psi",
            "PSI of live inputs against training, per feature, over the window (mlci_drift_window_seconds)",
            labels=["feature", "model_version"],
        )
        threshold = GaugeMetricFamily(
            "mlci_feature_drift_threshold",
            "PSI over which a feature counts as drifted",
            labels=["feature", "model_version"],
        )
        drifted = GaugeMetricFamily(
            "mlci_feature_drifted",
            "1 when the feature's PSI over the window is over its threshold with at least the minimum records in it",
            labels=["feature", "model_version"],
        )
        for feature in report.features:
            if feature.psi is not None and math.isfinite(feature.psi):
                psi_.add_metric([feature.name, version], feature.psi)
            threshold.add_metric([feature.name, version], feature.threshold)
            drifted.add_metric([feature.name, version], 1.0 if feature.drifted else 0.0)
        records = GaugeMetricFamily(
            "mlci_drift_records",
            "Records counted for drift over the window, over every worker",
            labels=["model_version"],
        )
        records.add_metric([version], report.records)
        window = GaugeMetricFamily(
            "mlci_drift_window_seconds",
            "Seconds the windowed drift figures cover: the window, or the time since start until a whole window",
            labels=["model_version"],
        )
        window.add_metric([version], report.window_seconds)
        minimum = GaugeMetricFamily(
            "mlci_drift_min_records", "Records needed before a feature may count as drifted", labels=["model_version"]
        )
        minimum.add_metric([version], report.min_records)
        return [psi_, threshold, drifted, records, minimum, window]
