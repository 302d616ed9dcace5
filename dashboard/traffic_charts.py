"""The Live model page's traffic charts (Altair, drawn by st.altair_chart): one per figure, each with a
dashed vertical rule at every blue/green switch of the window."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import altair as alt
import pandas as pd

from mlci.dashboard.traffic import Switch, Traffic

HEIGHT = 240
SWITCH_COLOUR = "#d62728"


def _time(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC).replace(tzinfo=None)  # charts in UTC, said on the axis


def _segment(data: Traffic, at: float) -> int:
    """How many switches came before `at`: lines are drawn per segment, never joined across a switch."""
    return sum(1 for s in data.switches if s.at <= at)


def frame(data: Traffic) -> pd.DataFrame:
    """One row per point: time, segment and every figure (NaN where the interval had no request)."""
    rows = [
        {
            "time": _time(p.at),
            "segment": _segment(data, p.at),
            "requests/s": p.rps,
            "p50 ms": p.p50_ms,
            "p99 ms": p.p99_ms,
            "errors %": None if p.error_rate is None else 100 * p.error_rate,
            "rejected %": None if p.rejected_rate is None else 100 * p.rejected_rate,
        }
        for p in data.points
    ]
    figures = ["requests/s", "p50 ms", "p99 ms", "errors %", "rejected %"]
    return pd.DataFrame(rows, columns=["time", "segment", *figures]).astype(
        dict.fromkeys(figures, float)
    )  # None -> NaN


def classes_frame(data: Traffic) -> pd.DataFrame:
    rows = [
        {"time": _time(p.at), "segment": _segment(data, p.at), "class": label, "predictions/s": v}
        for p in data.points
        for label, v in p.classes.items()
    ]
    return pd.DataFrame(rows, columns=["time", "segment", "class", "predictions/s"])


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
    long = frame(data).melt(id_vars=["time", "segment"], value_vars=columns, var_name="series", value_name="value")
    chart = (
        alt.Chart(long)
        .mark_line(point=alt.OverlayMarkDef(size=18))
        .encode(
            x=_x(),
            y=alt.Y("value:Q", title=title, axis=alt.Axis(format="~r")),
            color=alt.Color("series:N", title=None, legend=alt.Legend(orient="top")),
            detail="segment:N",
            tooltip=["series:N", alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("time:T", format="%H:%M:%S")],
        )
    )
    return _with_switches(chart, data.switches)


def class_mix(data: Traffic) -> Any:
    """Predictions per second of each predicted class (a line each: a stacked area would be drawn
    through the gap at a switch)."""
    chart = (
        alt.Chart(classes_frame(data))
        .mark_line(point=alt.OverlayMarkDef(size=18))
        .encode(
            x=_x(),
            y=alt.Y("predictions/s:Q", title="predictions/s by class", axis=alt.Axis(format="~r")),
            color=alt.Color("class:N", legend=alt.Legend(orient="top")),
            detail="segment:N",
            tooltip=["class:N", alt.Tooltip("predictions/s:Q", format=".2f"), alt.Tooltip("time:T", format="%H:%M:%S")],
        )
    )
    return _with_switches(chart, data.switches)
