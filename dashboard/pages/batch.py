"""Batch: a CSV checked against GET /schema, sent to POST /predict in chunks within the API's limit.

A classifier's results add the label and a probability column per class, with the label counts; a
regression's add the predicted number, with a histogram of them against the training target's range.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import streamlit as st

from mlci.dashboard import core, regression, regression_charts, ui
from mlci.dashboard.client import ApiRejected, ApiUnavailable, Prediction


def _source() -> tuple[str, bytes] | None:
    upload = st.file_uploader(
        "CSV file (one row per record, a header with the feature names)", type=["csv", "txt"], key="batch-upload"
    )
    with st.expander("…or paste CSV text"):
        pasted = st.text_area("CSV text", key="batch-paste", height=150, placeholder="feature_a,feature_b,…\n1.0,2.0,…")
    if upload is not None:
        return upload.name, upload.getvalue()
    if pasted and pasted.strip():
        return "pasted.csv", pasted.encode()
    return None


def _send(check: core.CsvCheck, size: int, digest: str) -> None:
    records = check.records
    predictions: list[Prediction] = []
    versions: list[str] = []
    last = ("", "")  # the model that answered the last chunk: name, version (whose target range is shown)
    total = len(records)
    bar = st.progress(0.0, text=f"0 / {total} rows")
    problem: str | None = None
    rejected: list[dict[str, Any]] = []
    offset = 0
    while offset < total:
        chunk = records[offset : offset + size]
        try:
            answer = ui.client().predict(chunk)
        except ApiRejected as error:
            if error.status == 413 and size > 1:
                size = max(1, size // 2)  # the body limit bites before the record limit: smaller chunks
                continue
            problem = (
                f"The API refused the chunk starting at row {offset + 1} ({error.status} {error.error}): "
                f"{error.message}"
            )
            rejected = [
                {
                    "row": (d.record + offset + 1) if d.record is not None else None,
                    "field": d.field,
                    "problem": d.problem,
                }
                for d in error.details
            ]
            break
        except ApiUnavailable as error:
            problem = f"The API became unavailable after {len(predictions)} rows: {error.message}"
            break
        predictions.extend(answer.predictions)
        versions.extend([answer.model_version] * len(answer.predictions))
        last = (answer.model_name, answer.model_version)
        offset += len(chunk)
        bar.progress(len(predictions) / total, text=f"{len(predictions)} / {total} rows")
    values = bool(predictions) and all(p.is_value for p in predictions)
    st.session_state["batch_result"] = {
        "digest": digest,
        "frame": _frame(check, predictions, versions, values),
        "values": values,
        "model": ui.model_facts(*last) if values else {},
        "problem": problem,
        "rejected": rejected,
        "total": total,
    }


def _frame(check: core.CsvCheck, predictions: list[Prediction], versions: list[str], values: bool) -> pd.DataFrame:
    """The results table: a regression's values, or a classifier's labels and probabilities (classes in the
    order they came)."""
    if values:
        return regression.results_frame(check.frame, [float(p.value or 0.0) for p in predictions], versions)
    classes: list[str] = []
    for p in predictions:
        classes.extend(c for c in p.probabilities if c not in classes)
    labels = [p.label for p in predictions]
    return core.results_frame(check.frame, labels, [p.probabilities for p in predictions], classes, versions)


def _values(frame: pd.DataFrame, model: dict[str, Any]) -> None:
    """A regression's results: the table, then the histogram of predicted values and their summary."""
    st.dataframe(frame, width="stretch", height=360)
    facts = regression.target(model)
    cols = st.columns([3, 1])
    with cols[0]:
        st.markdown("**Predicted values**")
        st.altair_chart(regression_charts.values_histogram(frame["prediction"], facts), width="stretch")
        if facts is not None:
            st.caption(f"Dashed grey: the training target's min, mean and max ({facts.text()}).")
    with cols[1]:
        for name, value in regression.summary(frame["prediction"]).items():
            st.metric(f"{name} prediction", value)


def _show(result: dict[str, Any]) -> None:
    frame: pd.DataFrame = result["frame"]
    if result["problem"]:
        st.error(result["problem"], icon=":material/warning:")
        if result["rejected"]:
            st.dataframe(pd.DataFrame(result["rejected"]), width="stretch", hide_index=True)
    if frame.empty:
        return
    versions = sorted(set(frame["model_version"]))
    st.success(
        f"**{len(frame)} of {result['total']} rows predicted** by model version(s) "
        f"{', '.join('v' + v for v in versions)}",
        icon=":material/check_circle:",
    )
    if result.get("values"):
        _values(frame, result.get("model") or {})
    else:
        cols = st.columns([3, 1])
        with cols[0]:
            st.dataframe(frame, width="stretch", height=360)
        with cols[1]:
            st.markdown("**Labels**")
            st.bar_chart(frame["prediction"].value_counts().rename("rows"), height=220)
    st.download_button(
        "Download results (CSV)",
        frame.to_csv(index=False).encode(),
        file_name="predictions.csv",
        mime="text/csv",
        type="primary",
        key="batch-download",
    )


def page() -> None:
    st.title("Batch")
    schema = ui.schema()
    size = core.max_batch(schema)
    names = core.feature_names(schema)
    st.caption(
        f"Upload a CSV whose header names the {len(names)} features; it is checked against the API's "
        f"schema before anything is sent, then sent in chunks of at most {size} rows (the API's batch limit). "
        "Other columns are kept in the results but not sent."
    )
    with st.expander("Expected columns"):
        st.dataframe(
            pd.DataFrame(
                [{"column": f["name"], "type": f["type"], "allowed": core.range_text(f)} for f in core.features(schema)]
            ),
            hide_index=True,
            width="stretch",
        )
    source = _source()
    if source is None:
        st.info("Waiting for a CSV file.")
        return
    filename, data = source
    digest = hashlib.sha256(data).hexdigest()
    check = core.check_csv(data, schema)
    for warning in check.warnings:
        st.warning(warning)
    if check.errors:
        st.error(
            f"**{filename} cannot be sent:**\n\n" + "\n".join(f"- {e}" for e in check.errors), icon=":material/block:"
        )
        return
    chunks = -(-len(check.records) // size)
    st.markdown(f"**{filename}**: {len(check.records)} rows ready, {chunks} request(s) of ≤ {size} rows.")
    with st.expander("Preview (first 10 rows)"):
        if check.frame is not None:
            st.dataframe(check.frame.head(10), width="stretch")
    if st.button(f"Predict {len(check.records)} rows", type="primary", key="batch-send"):
        _send(check, size, digest)
    result = st.session_state.get("batch_result")
    if result and result["digest"] == digest:
        _show(result)


ui.guard(page, key="batch")
