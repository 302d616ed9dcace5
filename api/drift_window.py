"""The rolling window of the drift figures: a bounded history of the summed cumulative counts, and the
counts over the window (now minus the oldest snapshot within it).

Counts since the API started would let weeks of normal traffic hide a sudden shift for days, so each worker
keeps a CountHistory, sampled by the flush task every 1/60 of the window, and subtracts the counts at the
oldest snapshot within the window from the counts now. Until the worker has lived a whole window the figures
are since *its* start: the history starts from the summed counts when the worker was made (`baseline`),
not from zeros, because the sum includes every other worker's counts since the server started (a worker
uvicorn respawned would otherwise report all of them as its own first window).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

DEFAULT_WINDOW_MINUTES = 60  # as mlci.core.config.Drift: a bundle packaged before the window gets the same default
SNAPSHOTS_PER_WINDOW = 60  # the window moves in steps of 1/60 of its length (a minute for the default hour)
MIN_SAMPLE_SECONDS = 5.0  # a short window still does not read every worker's counter file every second


@dataclass(frozen=True)
class WindowStart:
    """Where the windowed figures start: the summed counts at that moment, and how long ago it was."""

    counts: list[np.ndarray]
    seconds: float  # the span the windowed figures cover
    full: bool  # False: the worker has not lived a whole window yet, so the figures are since start


class CountHistory:
    """A bounded history of the summed cumulative counts, to subtract the counts at the start of the window.

    One snapshot every `step` seconds (1/60 of the window, at least MIN_SAMPLE_SECONDS), at most one window's
    worth kept: memory and read cost stay fixed however long the API runs. `baseline` is the summed counts
    when this worker started (every worker's, not only its own), where "since start" figures begin."""

    def __init__(self, window_seconds: float, started: float, baseline: list[np.ndarray]):
        self.window_seconds = window_seconds
        self.step = max(window_seconds / SNAPSHOTS_PER_WINDOW, MIN_SAMPLE_SECONDS)
        self.started = started
        self._baseline = [np.asarray(c, dtype=np.float64).copy() for c in baseline]
        self._snapshots: deque[tuple[float, list[np.ndarray]]] = deque(maxlen=math.ceil(window_seconds / self.step) + 2)
        self._next = started + self.step

    def due(self, now: float) -> bool:
        return now >= self._next

    def add(self, now: float, counts: list[np.ndarray]) -> None:
        self._snapshots.append((now, [c.copy() for c in counts]))
        self._next = now + self.step

    def start(self, now: float) -> WindowStart:
        """The oldest snapshot within the window; since start until the worker has lived a whole window."""
        if now - self.started < self.window_seconds:
            return WindowStart(self._baseline, now - self.started, full=False)
        oldest = now - self.window_seconds
        for taken, counts in self._snapshots:  # oldest first
            if taken >= oldest:
                return WindowStart(counts, now - taken, full=True)
        if self._snapshots:  # none within the window (sampling stalled): the newest, covering a little more
            taken, counts = self._snapshots[-1]
            return WindowStart(counts, now - taken, full=True)
        return WindowStart(self._baseline, now - self.started, full=False)


def windowed(now: list[np.ndarray], start: list[np.ndarray]) -> list[np.ndarray]:
    """Counts now minus counts at the window's start. Summed cumulative counts only go down when a worker's
    counter file disappears: clamped at zero, so a lost file makes a bin smaller, never negative."""
    return [np.maximum(n - s, 0.0) for n, s in zip(now, start)]
