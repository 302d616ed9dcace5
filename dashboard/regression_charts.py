"""A regression's charts (Altair, drawn by st.altair_chart): a number against the training target, a batch
of predicted values, and the values the API served. The data behind them comes from mlci.dashboard.regression."""

from __future__ import annotations

from typing import Any, Literal

import altair as alt
import pandas as pd

from mlci.dashboard.regression import Bin, Target, number, shares_frame

PREDICTION_COLOUR = "#d62728"
BAND_COLOURS = ("#c6dbef", "#9ecae1")  # alternate shades for the training target's decile bins
HEIGHT = 240


def target_frame(facts: Target) -> pd.DataFrame:
    """One row per bin of the training target (min, the deciles, max), with the share of targets it holds."""
    bounds = facts.bounds()
    share = f"{100 / len(bounds):.0f} %" if facts.deciles else "—"
    rows = [
        {
            "low": low,
            "high": high,
            "band": i % 2,
            "bin": f"{number(low)} – {number(high)}",
            "training targets": share,
        }
        for i, (low, high) in enumerate(bounds)
    ]
    return pd.DataFrame(rows, columns=["low", "high", "band", "bin", "training targets"])


def _y(at: float) -> alt.YDatum:
    """A height in the strip's own scale (0 at the bottom, 1 at the top of the bins; no axis)."""
    return alt.YDatum(at, scale=alt.Scale(domain=[0, 1.5]), axis=None)


def prediction_on_target(facts: Target, value: float) -> Any:
    """The training target's range as a strip of its decile bins, its mean as a black rule, and the prediction
    as a red rule labelled with its value (the axis widens to show a value outside the range)."""
    low, high = min(facts.min, value), max(facts.max, value)
    pad = (high - low) * 0.04 or abs(value) * 0.04 or 1.0
    x_scale = alt.Scale(domain=[low - pad, high + pad], nice=False, zero=False)
    bands = (
        alt.Chart(target_frame(facts))
        .mark_rect(stroke="white", strokeWidth=1)
        .encode(
            x=alt.X("low:Q", scale=x_scale, title="training target (bins between deciles; mean in black)"),
            x2="high:Q",
            y=_y(0.15),
            y2=alt.Y2Datum(0.95),
            color=alt.Color("band:N", scale=alt.Scale(range=list(BAND_COLOURS)), legend=None),
            tooltip=["bin:N", "training targets:N"],
        )
    )
    mean = (
        alt.Chart(pd.DataFrame({"mean": [facts.mean]}))
        .mark_rule(color="black", strokeWidth=2)
        .encode(x="mean:Q", y=_y(0.05), y2=alt.Y2Datum(1.05), tooltip=["mean:Q"])
    )
    marker = pd.DataFrame({"prediction": [value], "text": [f"prediction {number(value)}"]})
    rule = (
        alt.Chart(marker)
        .mark_rule(color=PREDICTION_COLOUR, strokeWidth=3)
        .encode(x="prediction:Q", y=_y(0.0), y2=alt.Y2Datum(1.15))
    )
    place = (value - (low - pad)) / (high - low + 2 * pad)  # where the label sits, 0 (left) to 1 (right)
    align: Literal["left", "center", "right"] = "left" if place < 0.15 else "right" if place > 0.85 else "center"
    label = (
        alt.Chart(marker)
        .mark_text(color=PREDICTION_COLOUR, fontWeight="bold", fontSize=13, align=align, baseline="bottom")
        .encode(x="prediction:Q", y=_y(1.2), text="text:N")
    )
    return alt.layer(bands, mean, rule, label).properties(height=160)


def values_histogram(values: pd.Series, facts: Target | None = None) -> Any:
    """A batch's predicted values as a histogram (up to 30 bins); the training target's min, mean and max as
    dashed grey rules when known."""
    frame = pd.DataFrame({"prediction": pd.to_numeric(values, errors="coerce")}).dropna()
    binning = alt.Bin(maxbins=30)
    if facts is not None and not frame.empty:  # bins over the training range too: bars as wide as the rules' span
        binning = alt.Bin(
            maxbins=30,
            extent=[min(facts.min, float(frame["prediction"].min())), max(facts.max, float(frame["prediction"].max()))],
        )
    bars = (
        alt.Chart(frame)
        .mark_bar(color="#4c78a8")
        .encode(
            x=alt.X("prediction:Q", bin=binning, title="predicted value"),
            y=alt.Y("count():Q", title="rows"),
            tooltip=[alt.Tooltip("count():Q", title="rows")],
        )
    )
    if facts is None:
        return bars.properties(height=HEIGHT)
    marks = pd.DataFrame(
        {"value": [facts.min, facts.mean, facts.max], "training target": ["min", "mean", "max"]},
    )
    rules = (
        alt.Chart(marks)
        .mark_rule(color="grey", strokeDash=[4, 3])
        .encode(x="value:Q", tooltip=["training target:N", alt.Tooltip("value:Q", format=".4g")])
    )
    return alt.layer(bars, rules).properties(height=HEIGHT)


def served_values(found: list[Bin], deciles: bool) -> Any:
    """The share of served predictions in each bucket of the API's histogram (the training target's deciles),
    in order; with the nine deciles, a grey tick at 10 %: the share of training targets in each bin."""
    frame = shares_frame(found)
    order = list(frame["bin"])
    bars = (
        alt.Chart(frame)
        .mark_bar(color="#4c78a8")
        .encode(
            x=alt.X(
                "bin:N",
                sort=order,
                title="predicted value (bins between the training target's deciles)",
                axis=alt.Axis(labelAngle=-35),
            ),
            y=alt.Y("share:Q", title="share of predictions", axis=alt.Axis(format="%")),
            tooltip=["bin:N", alt.Tooltip("predictions:Q", format=".0f"), alt.Tooltip("share:Q", format=".1%")],
        )
    )
    if not deciles:
        return bars.properties(height=HEIGHT)
    reference = (
        alt.Chart(frame.assign(training=1 / len(frame)))
        .mark_tick(color="grey", thickness=2)
        .encode(x=alt.X("bin:N", sort=order), y="training:Q")
    )
    return alt.layer(bars, reference).properties(height=HEIGHT)
