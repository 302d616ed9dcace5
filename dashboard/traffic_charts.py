"""The Live model page's traffic charts (Altair, drawn by st.altair_chart): one per figure, each with a
dashed vertical rule at every blue/green switch of the window."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import altair as alt
import pandas as pd

from dashboard.traffic import Switch, Traffic

HEIGHT = 240
SWITCH_COLOUR = "#d62728"


def _time(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC).replace(tzinfo=None)  # charts in UTC, said on the axis


def frame(data: Traffic) -> pd.DataFrame:
    """One row per point: time and every figure (NaN where the interval had no request)."""
    rows = [
        {
            "time": _time(p.at),
            "requests/s": p.rps,
            "p50 ms": p.p50_ms,
            "p99 ms": p.p99_ms,
            "errors %": None if p.error_rate is None else 100 * p.error_rate,
            "rejected %": None if p.rejected_rate is None else 100 * p.rejected_rate,
        }
        for p in data.points
    ]
    figures = ["requests/s", "p50 ms", "p99 ms", "errors %", "rejected %"]
    return pd.DataFrame(rows, columns=["time", *figures]).astype(dict.fromkeys(figures, float))  # None -> NaN


def classes_frame(data: Traffic) -> pd.DataFrame:
    rows = [
        {"time": _time(p.at), "class": label, "predictions/s": v} for p in data.points for label, v in p.classes.items()
    ]
    return pd.DataFrame(rows, columns=["time", "class", "predictions/s"])


def switches_frame(switches: list[Switch]) -> pd.DataFrame:
    rows = [{"time": _time(s.at), "switch": s.text} for s in switches]
    return pd.DataFrame(rows, columns=["time", "switch"])


def _x() -> alt.X:
    return alt.X("time:T", title="time (UTC)", axis=alt.Axis(format="%H:%M:%S", labelAngle=0))


def _with_switches(chart: alt.Chart, switches: list[Switch]) -> Any:
    if not switches:
        return chart.properties(height=HEIGHT)
    rules = (
        alt.Chart(switches_frame(switches))
        .mark_rule(color=SWITCH_COLOUR, strokeDash=[6, 3], strokeWidth=2)
        .encode(x="time:T", tooltip=["switch:N", alt.Tooltip("time:T", format="%H:%M:%S")])
    )
    return alt.layer(chart, rules).properties(height=HEIGHT)


def lines(data: Traffic, columns: list[str], title: str) -> Any:
    """Some columns of `frame` as lines over time, with the switch markers."""
    long = frame(data).melt(id_vars="time", value_vars=columns, var_name="series", value_name="value")
    chart = (
        alt.Chart(long)
        .mark_line(point=alt.OverlayMarkDef(size=18))
        .encode(
            x=_x(),
            y=alt.Y("value:Q", title=title, axis=alt.Axis(format="~g")),
            color=alt.Color("series:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=["series:N", alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("time:T", format="%H:%M:%S")],
        )
    )
    return _with_switches(chart, data.switches)


def class_mix(data: Traffic) -> Any:
    """Predictions per second, stacked by predicted class."""
    chart = (
        alt.Chart(classes_frame(data))
        .mark_area(opacity=0.8)
        .encode(
            x=_x(),
            y=alt.Y("predictions/s:Q", stack="zero", title="predictions/s"),
            color=alt.Color("class:N", legend=alt.Legend(orient="top")),
            tooltip=["class:N", alt.Tooltip("predictions/s:Q", format=".2f"), alt.Tooltip("time:T", format="%H:%M:%S")],
        )
    )
    return _with_switches(chart, data.switches)
