"""Live model: what the API serves right now (GET /version), refreshed on its own every few seconds."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from dashboard import core, drift, ui
from dashboard.client import ApiError

st.title("Live model")
st.caption(
    "What the prediction API behind this dashboard serves right now. This panel refreshes by itself "
    f"every {ui.refresh_seconds():g} s, so a blue/green switch shows up without reloading the page."
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
    cols[3].metric(f"Primary metric ({primary or '—'})", f"{value:.4f}" if value is not None else "—")

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
        "classes": ", ".join(map(str, version.get("classes") or [])),
    }
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
            st.table(pd.DataFrame({"value": [f"{v:.4f}" for v in metrics.values()]}, index=list(metrics)))
        else:
            st.info("The bundle records no metrics.")
        st.caption(f"Data fingerprint `{_short(data.get('sha256'))}…` · commit `{_short(version.get('commit'), 10)}`")
    drift.panel(ui.client())
    st.caption(f"Checked at {datetime.now().strftime('%H:%M:%S')} from `{ui.api_url()}/version`")


live_panel()
