"""The API's Prometheus metrics: requests and latency by route and status, predictions by label (a
regression: predicted values in buckets of the training target's deciles),
micro-batch sizes and the model served, on a registry of the app's own.

With several uvicorn workers (PROMETHEUS_MULTIPROC_DIR set by mlci.api.server), each worker writes its
values to files there and a scrape sums them all, so counters never go backwards from one scrape to
the next whichever worker answers.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Prometheus metrics on a registry of their own (one per app, never the global one)."""

    def __init__(self, model_name: str, model_version: str, value_buckets: list[float] | None = None):
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        self.model_version = model_version
        self.requests = Counter(
            "mlci_requests",
            "HTTP requests by route and status",
            ["route", "method", "status", "model_version"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlci_request_duration_seconds",
            "Request latency by route and status",
            ["route", "status", "model_version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "mlci_predictions", "Predictions by predicted label", ["label", "model_version"], registry=self.registry
        )
        # A regression's answers: how the predicted values spread (buckets from the bundle's training target).
        self.values = (
            Histogram(
                "mlci_prediction_value",
                "Predicted values (regression), in buckets of the training target's deciles",
                ["model_version"],
                buckets=sorted(set(value_buckets)),
                registry=self.registry,
            )
            if value_buckets
            else None
        )
        self.batch_rows = Histogram(
            "mlci_micro_batch_rows",
            "Rows per micro-batch model call",
            ["model_version"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.info = Gauge(
            "mlci_model_info",
            "The model this process serves (value 1)",
            ["name", "model_version"],
            registry=self.registry,
            multiprocess_mode="livemax",  # 1 while a worker serving it lives, not the sum of the workers
        )
        self.info.labels(model_name, model_version).set(1)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._labels: dict[str, Any] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status), self.model_version),
                self.latency.labels(route, str(status), self.model_version),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_predictions(self, outputs: list[Any]) -> None:
        """Count labels (classification) or put values in their buckets (regression)."""
        if self.values is not None:
            child = self.values.labels(self.model_version)
            for value in outputs:
                child.observe(value)
            return
        self.count_labels(outputs)

    def count_labels(self, labels: list[str]) -> None:
        for label in labels:
            child = self._labels.get(label)
            if child is None:
                child = self._labels[label] = self.predictions.labels(label, self.model_version)
            child.inc()

    def observe_batch(self, rows: int) -> None:
        self.batch_rows.labels(self.model_version).observe(rows)

    def exposition(self) -> bytes:
        """The Prometheus text: this process's registry, or every worker's files summed."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry)

    def process_exit(self) -> None:
        """Drop this worker's live-only gauge files (its counters stay in the sums)."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)
