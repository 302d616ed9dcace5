"""Live model: what the API serves right now (GET /version), refreshed on its own every few seconds.

A classifier's traffic shows the predicted classes over time; a regression's, how the values it
served spread over the training target's deciles (the API's `mlci_prediction_value` histogram).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st

from mlci.dashboard import core, drift, regression, regression_charts, traffic, traffic_charts, ui
from mlci.dashboard.client import ApiError

st.title("Live model")
st.caption(
    "What the prediction API behind this dashboard serves right now. This panel refreshes by itself "
    f"every {ui.refresh_seconds():g} s, so a blue/green switch shows up without reloading the page."
)


def _scrape(version: dict[str, Any]) -> traffic.Traffic:
    """Add a sample of GET /metrics to this API's series (unless another session just did) and read it."""
    series = traffic.series(ui.api_url())
    now = time.time()
    if series.due(now, ui.refresh_seconds() / 2):
        model = (str(version.get("version", "")), str(version.get("colour", "")))
        sample = traffic.parse(ui.client().metrics(), now, model)
        if sample.consistent:  # else a switch came between the two requests: the next refresh reads again
            series.add(sample)
    return traffic.traffic(series.samples(), now=now)


def _figure(value: float | None, unit: str, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}{unit}"


def traffic_panel(version: dict[str, Any]) -> None:
    """Requests/s, latency, errors and class mix (a regression: served values) of /predict over the last
    minutes, switches marked."""
    minutes = traffic.WINDOW_SECONDS / 60
    st.markdown(f"#### Traffic on /predict, last {minutes:g} minutes")
    try:
        data = _scrape(version)
    except ApiError as error:
        st.warning(f"**No traffic figures**: {error.message}", icon=":material/warning:")
        return
    if not data.points:
        st.info(
            "Collecting: the figures need two readings of the API's /metrics "
            f"({ui.refresh_seconds():g} s apart, none across a switch).",
            icon=":material/hourglass_top:",
        )
    else:
        last = data.points[-1]
        cols = st.columns(4)
        cols[0].metric("Requests/s", _figure(last.rps, "", 2))
        cols[1].metric("p50 latency", _figure(last.p50_ms, " ms"))
        cols[2].metric("p99 latency", _figure(last.p99_ms, " ms"))
        cols[3].metric("Errors (5xx)", _figure(None if last.error_rate is None else 100 * last.error_rate, " %"))
    if data.switches:
        shown = ", ".join(f"{datetime.fromtimestamp(s.at, UTC):%H:%M:%S} UTC {s.text}" for s in data.switches)
        st.caption(f":red[**Blue/green switches**] (dashed red lines): {shown}")
    if not data.points and not data.switches:
        return
    left, right = st.columns(2)
    left.altair_chart(traffic_charts.lines(data, ["requests/s"], "requests/s"), width="stretch")
    right.altair_chart(traffic_charts.lines(data, ["p50 ms", "p99 ms"], "latency (ms)"), width="stretch")
    left.altair_chart(traffic_charts.lines(data, ["errors %", "rejected %"], "share of requests (%)"), width="stretch")
    if regression.is_regression(version):
        with right:
            _served_values(data, version)
    else:
        right.altair_chart(traffic_charts.class_mix(data), width="stretch")
    st.caption(
        "From the API's Prometheus counters (all its workers), read every "
        f"{ui.refresh_seconds():g} s; rates are differences between two readings, a counter reset counts "
        "from zero, and no rate is drawn across a switch."
    )


def _served_values(data: traffic.Traffic, version: dict[str, Any]) -> None:
    """A regression's predicted values since the last switch, in the API's buckets (the training target's deciles)."""
    if regression.target(version) is None:
        st.info(
            "This bundle records no training target (packaged without it): the API keeps no histogram of "
            "the values it predicts.",
            icon=":material/info:",
        )
        return
    found = regression.bins(traffic.served_values(data))
    total = sum(b.count for b in found)
    if not total:
        st.info("No prediction served in this window yet: the predicted values' histogram fills as requests come.")
        return
    st.altair_chart(regression_charts.served_values(found, deciles=len(found) == 10), width="stretch")
    st.caption(
        f"{total:.0f} predicted values since the last switch (the window's last model only). "
        + ("Grey ticks: a tenth of the training targets lies in each bin." if len(found) == 10 else "")
    )


def _short(text: object, size: int = 12) -> str:
    text = str(text or "")
    return text[:size] if len(text) > size else text or "—"


@st.fragment(run_every=ui.refresh_seconds())
def live_panel() -> None:
    try:
        version = ui.fetch_version()
    except ApiError as error:
        ui.api_banner(error, key="retry-live")
        return
    ui.change_banner("live")
    name, number = version.get("name", "?"), version.get("version", "?")
    st.markdown(f"### Serving `{name}` version **{number}**")
    cols = st.columns(4)
    cols[0].metric("Version", str(number))
    cols[1].metric("Colour", str(version.get("colour", "—")))
    cols[2].metric("Environment", str(version.get("environment", "—")))
    primary, value = core.primary_metric(version)
    label = f"Primary metric ({primary or '—'})"
    if regression.is_regression(version) and primary:
        label = f"Primary metric ({primary}, {core.direction_text(primary)})"
    cols[3].metric(label, f"{value:.4f}" if value is not None else "—")

    data = version.get("data") or {}
    facts = {
        "model name": name,
        "version": number,
        "trained at": version.get("trained_at"),
        "trained by": version.get("trained_by"),
        "commit": version.get("commit"),
        "MLflow run": version.get("run_id"),
        "data fingerprint (sha256)": data.get("sha256"),
        "data rows × columns": f"{data.get('rows', '?')} × {data.get('columns', '?')}" if data else None,
        "data path": data.get("path"),
        "estimator": version.get("estimator"),
        "bundle format": f"{version.get('format', '?')} ({version.get('precision', '?')})",
        "bundle created at": version.get("created_at"),
    }
    target = regression.target(version)
    if regression.is_regression(version):
        facts["task"] = "regression (predicts a number)"
        facts["training target"] = target.text() if target else "—"
    else:
        facts["classes"] = ", ".join(map(str, version.get("classes") or []))
    left, right = st.columns([3, 2])
    with left:
        st.markdown("#### Provenance")
        st.table(
            pd.DataFrame({"value": [str(v) if v not in (None, "") else "—" for v in facts.values()]}, index=list(facts))
        )
    with right:
        st.markdown("#### Test metrics")
        metrics = {k: v for k, v in (version.get("metrics") or {}).items() if isinstance(v, (int, float))}
        if metrics:
            table = pd.DataFrame({"value": [f"{v:.4f}" for v in metrics.values()]}, index=list(metrics))
            if regression.is_regression(version):
                table["better"] = [core.direction_text(m) for m in metrics]
            st.table(table)
        else:
            st.info("The bundle records no metrics.")
        st.caption(f"Data fingerprint `{_short(data.get('sha256'))}…` · commit `{_short(version.get('commit'), 10)}`")
    traffic_panel(version)
    drift.panel(ui.client())
    st.caption(f"Checked at {datetime.now().strftime('%H:%M:%S')} from `{ui.api_url()}/version`")


live_panel()
