"""The training distribution of each feature, written into the bundle as distribution.json.

The API compares what it is asked with this (mlci.api.drift: PSI per feature), so it is computed from the
rows the version was trained on, and only from data proven to be that version's: the data file whose
sha256 equals the one recorded on the version's run at training time. Anything else (the file changed
since, or the run recorded no fingerprint) gives no distribution, with the reason in the package report,
rather than a reference that silently describes other data.

Numeric features: quantile bin edges of the training values (`monitoring.drift.bins`, ties merged), the
first and last bins open-ended, and the share of training rows in each bin. Categorical features: the
share of each of the `max_categories` most frequent categories, of every other value ("other", which
is also where a category never seen in training lands), and of missing values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from mlci.contract import bundle as fmt
from mlci.contract.bundle_schema import CategoricalBins, Distribution, NumericBins
from mlci.core.config import Config

DISTRIBUTION_FORMAT: Literal[1] = 1


@dataclass(frozen=True)
class TrainingRows:
    """The rows to profile, or None with the reason they cannot be trusted."""

    frame: pd.DataFrame | None
    reason: str | None = None


def verified_training_rows(x_train: pd.DataFrame, data_sha256: str, recorded_sha256: str | None) -> TrainingRows:
    """x_train only if the data file it came from is the one the version was trained on (same sha256)."""
    if not recorded_sha256:
        return TrainingRows(None, "the version's run records no data sha256 (mlci.data.sha256)")
    if data_sha256 != recorded_sha256:
        return TrainingRows(
            None,
            f"the data file's sha256 {data_sha256[:12]}… is not the training data's {recorded_sha256[:12]}… "
            "(the file changed since training)",
        )
    return TrainingRows(x_train)


def numeric_bins(name: str, values: np.ndarray, bins: int) -> NumericBins:
    """Quantile edges of the present values; shares of all rows (missing included) per bin."""
    present = values[~np.isnan(values)]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])) if present.size else np.empty(0)
    # side="right": bin i is [edges[i-1], edges[i]); mlci.api.drift assigns live values the same way.
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=edges.size + 1)
    rows = values.size
    return NumericBins(
        name=name,
        type="numeric",
        edges=[float(e) for e in edges],
        shares=[float(c / rows) for c in counts],
        missing=float((rows - present.size) / rows),
    )


def categorical_bins(name: str, values: np.ndarray, max_categories: int) -> CategoricalBins:
    """The most frequent categories (ties by name, so the file is deterministic), other and missing."""
    rows = values.size
    counts = pd.Series(values.astype(str)).value_counts()
    missing = int(counts.pop(fmt.MISSING_CATEGORY)) if fmt.MISSING_CATEGORY in counts.index else 0
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept, rest = ranked[:max_categories], ranked[max_categories:]
    return CategoricalBins(
        name=name,
        type="categorical",
        categories=[str(c) for c, _ in kept],
        shares=[float(n / rows) for _, n in kept],
        other=float(sum(n for _, n in rest) / rows),
        missing=float(missing / rows),
    )


def training_distribution(frame: pd.DataFrame, config: Config) -> Distribution:
    """Every feature's distribution over `frame` (the model frame: NaN / "" mark missing values)."""
    settings = config.monitoring.drift
    features: list[NumericBins | CategoricalBins] = []
    for name, feature in config.data.features.items():
        if feature.type == fmt.NUMERIC:
            features.append(numeric_bins(name, frame[name].to_numpy(dtype=np.float64), settings.bins))
        else:
            features.append(categorical_bins(name, frame[name].to_numpy(dtype=object), settings.max_categories))
    return Distribution(format=DISTRIBUTION_FORMAT, rows=len(frame), features=features)


def drift_settings(config: Config) -> dict[str, object]:
    """`monitoring.drift`, as metadata.json carries it to the API (per-feature thresholds flattened)."""
    settings = config.monitoring.drift
    return {
        "psi_threshold": settings.psi_threshold,
        "min_records": settings.min_records,
        "window_minutes": settings.window_minutes,
        "bins": settings.bins,
        "max_categories": settings.max_categories,
        "features": {name: f.psi_threshold for name, f in settings.features.items()},
    }
