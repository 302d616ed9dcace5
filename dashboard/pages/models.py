"""Models: the MLflow registry's versions of the served model — aliases, metrics, provenance. Read-only.

The primary metric is ranked in its direction (a regression's rmse: lower is better; roc_auc or r2:
higher), and each version's other test metrics are columns of the table.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mlci.dashboard import core, registry, ui
from mlci.dashboard.client import ApiError

REGISTRY_TTL = 15


@st.cache_data(ttl=REGISTRY_TTL, show_spinner="Reading the MLflow registry…")
def _load(uri: str, name: str) -> registry.RegistryView:
    return registry.load(uri, name)


def _metric_chart(chart: pd.DataFrame, metric: str):
    """A line with a point per version, each labelled with the aliases it holds (which environment serves
    it); the y axis fits the scores (they differ in the 2nd or 3rd decimal)."""
    import altair as alt

    base = alt.Chart(chart).encode(
        x=alt.X("version:O", title="model version", axis=alt.Axis(labelAngle=0)),
        y=alt.Y(f"{metric}:Q", title=metric, scale=alt.Scale(zero=False, nice=True)),
        tooltip=["version:O", alt.Tooltip(f"{metric}:Q", format=".4f"), "aliases:N"],
    )
    points = base.mark_point(filled=True, size=70).encode(
        color=alt.condition("datum.aliases != ''", alt.value("#d62728"), alt.value("#4c78a8"))
    )
    labels = base.mark_text(dy=-14, fontWeight="bold").encode(text="aliases:N")
    return (base.mark_line() + points + labels).properties(height=260)


def _model_name() -> str | None:
    live = st.session_state.get("mlci_live")
    api_name = live.get("name") if live else None
    if api_name is None and not registry.model_name(None):
        try:
            api_name = ui.client().version().get("name")
        except ApiError:
            api_name = None
    return registry.model_name(api_name)


def page() -> None:
    st.title("Models")
    uri = registry.tracking_uri()
    if uri is None:
        st.info(registry.not_configured(), icon=":material/info:")
        return
    name = _model_name()
    if not name:
        st.warning(
            "Which model? Set `MLCI_MODEL_NAME`, or start the API so the dashboard can read the served "
            "model's name from GET /version.",
            icon=":material/warning:",
        )
        return
    try:
        view = _load(uri, name)
    except registry.RegistryError as error:
        st.error(f"**The model registry is unavailable.** {error.message}", icon=":material/error:")
        if error.hint:
            st.caption(error.hint)
        if st.button("Retry now", key="retry-models", type="primary"):
            _load.clear()
            st.rerun()
        return
    st.caption(
        f"Registered model `{view.model_name}` in `{view.tracking_uri}` (read-only; refreshed every {REGISTRY_TTL} s)."
    )
    if not view.rows:
        st.info(f"Model `{view.model_name}` has no registered version yet (`mlci train` registers one).")
        return
    live = st.session_state.get("mlci_live") or {}
    metric = view.primary_metric or "primary metric"
    direction = core.direction_text(metric)
    best = registry.best_version(view.rows, core.higher_is_better(metric))
    if view.aliases or best is not None:
        cols = st.columns(len(view.aliases) + 2)
        for col, (alias, version) in zip(cols, sorted(view.aliases.items())):
            col.metric(f"@{alias}", f"v{version}")
        if best is not None:
            cols[-2].metric(f"Best {metric}", f"v{best}", help=f"{metric}: {direction}")
        if live.get("name") == view.model_name:
            cols[-1].metric("API serves", f"v{live.get('version')}")
    others = core.metric_order(view.metrics)
    frame = pd.DataFrame(view.rows).rename(columns={"metric": metric})
    fixed = [c for c in frame.columns if c not in (metric, *others)]
    frame = frame[[*fixed[:2], metric, *others, *fixed[2:]]]  # version, aliases, the metrics, provenance
    chart = frame[["version", metric, "aliases"]].dropna(subset=[metric]).sort_values("version")
    if not chart.empty:
        st.markdown(f"#### {metric} over versions" + (f" ({direction})" if direction else ""))
        st.altair_chart(_metric_chart(chart, metric), width="stretch")
    st.markdown("#### Versions")
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "version": st.column_config.NumberColumn("version", format="v%d"),
            **{
                m: st.column_config.NumberColumn(m, format="%.4f", help=core.direction_text(m) or None)
                for m in (metric, *others)
            },
        },
    )


ui.guard(page, key="models")
