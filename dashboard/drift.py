"""The drift view of the Live model page: per feature, how far live inputs are from the training data.

The API computes it (GET /drift: PSI per feature against the bundle's training distribution, summed over
its workers, over a rolling window); this module only lays it out: what the figures cover, one bar per
feature, the threshold marked, drifted features in red and listed above the chart, the per-bin shares in
a table below.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from mlci.dashboard.client import ApiClient, ApiError, ApiRejected

DRIFTED_COLOUR = "#d62728"
STABLE_COLOUR = "#4c78a8"
MAX_NAMES_SHOWN = 10


def drift_frame(report: dict[str, Any]) -> pd.DataFrame:
    """One row per feature, most drifted first: PSI (0 before any record), threshold, drifted."""
    rows = [
        {
            "feature": str(f.get("name")),
            "psi": float(f["psi"]) if isinstance(f.get("psi"), (int, float)) else 0.0,
            "threshold": float(f.get("threshold") or 0.0),
            "drifted": bool(f.get("drifted")),
        }
        for f in report.get("features") or []
    ]
    frame = pd.DataFrame(rows, columns=["feature", "psi", "threshold", "drifted"])
    return frame.sort_values(["drifted", "psi"], ascending=[False, False], ignore_index=True)


def bins_frame(report: dict[str, Any], feature: str) -> pd.DataFrame:
    """Training and live share of each bin of one feature."""
    for entry in report.get("features") or []:
        if entry.get("name") == feature:
            return pd.DataFrame(
                [{"bin": b.get("label"), "training": b.get("training"), "live": b.get("live")} for b in entry["bins"]]
            )
    return pd.DataFrame(columns=["bin", "training", "live"])


def drift_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """Horizontal PSI bars, red when drifted, with a black tick at each feature's threshold."""
    order = frame["feature"].tolist()
    # Every feature named (no label thinning), long names kept readable.
    axis = alt.Axis(labelOverlap=False, labelLimit=240)
    base = alt.Chart(frame).encode(y=alt.Y("feature:N", sort=order, title=None, axis=axis))
    bars = base.mark_bar().encode(
        x=alt.X("psi:Q", title="PSI (live inputs vs training)"),
        color=alt.Color(
            "drifted:N",
            scale=alt.Scale(domain=[True, False], range=[DRIFTED_COLOUR, STABLE_COLOUR]),
            legend=alt.Legend(title="drifted"),
        ),
        tooltip=["feature", alt.Tooltip("psi:Q", format=".4f"), "threshold", "drifted"],
    )
    ticks = base.mark_tick(color="black", thickness=2, size=14).encode(x="threshold:Q")
    return alt.LayerChart(layer=[bars, ticks], height=max(120, 22 * len(frame)))


def scope_line(report: dict[str, Any]) -> str:
    """What the figures cover: "Figures over the last 60 min, summed over this API's workers: 1,200 records
    (54,000 since start)." An API from before the window has no records_total: its scope says since start."""
    scope = str(report.get("scope") or "since start")
    records = int(report.get("records") or 0)
    total = report.get("records_total")
    since_start = f" ({int(total):,} since start)" if isinstance(total, int) and scope.startswith("the last") else ""
    over = "" if scope.startswith("since") else "over "
    return f"Figures {over}{scope}: {records:,} records{since_start}."


def _summary(report: dict[str, Any]) -> None:
    records, minimum = int(report.get("records") or 0), int(report.get("min_records") or 0)
    drifted = list(report.get("drifted") or [])
    if not report.get("enough_records"):
        st.info(
            f"{records:,} of the {minimum:,} records needed counted: PSI shows, but no feature is called "
            "drifted before that (PSI on few records is noise)."
        )
    elif drifted:
        names = ", ".join(drifted[:MAX_NAMES_SHOWN]) + (" …" if len(drifted) > MAX_NAMES_SHOWN else "")
        st.warning(f"**{len(drifted)} feature(s) drifted** from the training data: {names}", icon=":material/warning:")
    else:
        st.success(f"No feature drifted: every PSI is under its threshold ({records:,} records counted).")


def panel(client: ApiClient) -> None:
    """The drift section; an API without /drift or without a training distribution says so, nothing fails."""
    st.markdown("#### Input drift")
    try:
        report = client.drift()
    except ApiRejected as error:  # an API from before drift (404): the rest of the page still works
        st.info(f"This API does not report drift ({error.status}: {error.message}).")
        return
    except ApiError as error:
        st.info(f"Drift unavailable: {error.message}")
        return
    if not report.get("available"):
        st.info(f"Drift unavailable: {report.get('reason') or 'the bundle has no training distribution'}.")
        return
    st.caption(scope_line(report))
    _summary(report)
    frame = drift_frame(report)
    st.altair_chart(drift_chart(frame), width="stretch")
    st.caption(
        f"PSI of each feature's live inputs against its training distribution; threshold {report.get('psi_threshold')} "
        f"(ticks: per feature), {int(report.get('records') or 0):,} records."
    )
    with st.expander("Per-bin shares"):
        feature = st.selectbox("Feature", frame["feature"].tolist(), key="drift-feature")
        st.dataframe(bins_frame(report, str(feature)), hide_index=True)
    st.dataframe(frame, hide_index=True, key="drift-table")
