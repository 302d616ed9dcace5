"""Predict: a form generated from GET /schema, answered by POST /predict.

A classifier's answer shows its label and class probabilities; a regression's shows the predicted number
and where it sits in the training target (its range and deciles, from GET /version).

Numeric inputs state their range but do not clamp: the API is the judge, and its 4xx messages are
shown under the field they name (a value out of range, a category the served model does not know).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import streamlit as st

from mlci.dashboard import core, regression, regression_charts, ui
from mlci.dashboard.client import ApiRejected

COLUMNS = 4


def _numeric(feature: dict[str, Any], example: Any, key: str):
    value = None if example is None else float(example)
    return st.number_input(
        f"{feature['name']}",
        value=value,
        step=core.numeric_step(feature, example),
        format="%.6g",
        help=f"numeric, {core.range_text(feature)}",
        key=key,
        placeholder="empty = missing" if feature.get("nullable") else None,
    )


def _categorical(feature: dict[str, Any], example: Any, key: str):
    categories = [str(c) for c in feature.get("categories") or []]
    if not categories:
        return st.text_input(
            feature["name"],
            value="" if example is None else str(example),
            key=key,
            help=f"categorical, {core.range_text(feature)}",
        )
    options: list[Any] = categories + ([None] if feature.get("nullable") else [])
    index = options.index(str(example)) if example is not None and str(example) in options else 0
    return st.selectbox(
        feature["name"],
        options,
        index=index,
        key=key,
        format_func=lambda o: "(missing)" if o is None else o,
        help=f"categorical, {core.range_text(feature)}",
    )


def _answered_by(result: dict[str, Any]) -> None:
    live = st.session_state.get("mlci_live") or {}
    st.markdown(f"Answered by **{result['model_name']} v{result['model_version']}**")
    st.caption(f"request id `{result['request_id']}`")
    if live and str(live.get("version")) != str(result["model_version"]):
        st.info(f"The API now serves v{live.get('version')}: submit again to ask it.")


def _value(result: dict[str, Any]) -> None:
    """A regression's answer: the number, and where it sits in the training target."""
    value = float(result["value"])
    facts = regression.target(result.get("model"))
    st.subheader("Prediction")
    cols = st.columns([1, 2])
    with cols[0]:
        st.metric("Predicted value", regression.number(value))
        if facts is not None and facts.deciles and facts.min <= value <= facts.max:
            st.metric("Training percentile", f"≈ {regression.ordinal(round(regression.percentile(value, facts)))}")
        _answered_by(result)
    with cols[1]:
        if facts is None:
            st.info("The bundle records no training target range to compare this value with.")
            return
        st.markdown(f"**{regression.number(value)}** is {regression.position(value, facts)}.")
        st.altair_chart(regression_charts.prediction_on_target(facts, value), width="stretch")
        st.caption(f"Training target: {facts.text()}. Each shaded bin holds about a tenth of the training targets.")


def _result(result: dict[str, Any]) -> None:
    if "value" in result:
        _value(result)
        return
    st.subheader("Prediction")
    cols = st.columns([1, 2])
    with cols[0]:
        st.metric("Label", result["label"])
        top = max(result["probabilities"].values()) if result["probabilities"] else None
        if top is not None:
            st.metric("Confidence", f"{top:.1%}")
        _answered_by(result)
    with cols[1]:
        frame = core.probability_frame(result["probabilities"])
        st.bar_chart(frame, y="probability", horizontal=True, height=60 + 40 * len(frame))
        st.dataframe(frame.style.format({"probability": "{:.4f}"}), width="stretch")


def page() -> None:
    st.title("Predict")
    schema = ui.schema()
    feats = core.features(schema)
    example = schema.get("example") or {}
    model = schema.get("model") or {}
    st.caption(
        f"The form follows GET /schema of `{model.get('name')}` v{model.get('version')} "
        f"({len(feats)} features, prefilled with the bundle's example record). Ranges are in each "
        "field's help; the API checks them."
    )
    # Keyed by the feature set, not the version: a blue/green switch to a model with the same features
    # keeps what the user typed (and a click in flight still submits the form).
    signature = hashlib.sha256(json.dumps(feats, sort_keys=True).encode()).hexdigest()[:12]
    form_key = f"predict-{signature}"
    errors: dict[str, list[str]] = st.session_state.get("predict_errors", {}).get(form_key, {})
    slots: dict[str, Any] = {}
    values: dict[str, Any] = {}
    top = st.container()  # the answer goes above the form: with many features the form is long
    with st.form(form_key):
        grid = st.columns(COLUMNS)
        for i, feature in enumerate(feats):
            with grid[i % COLUMNS]:
                key = f"{form_key}:{feature['name']}"
                if feature.get("type") == core.NUMERIC:
                    values[feature["name"]] = _numeric(feature, example.get(feature["name"]), key)
                else:
                    values[feature["name"]] = _categorical(feature, example.get(feature["name"]), key)
                slots[feature["name"]] = st.empty()
        submitted = st.form_submit_button("Predict", type="primary")

    if submitted:
        record = core.record_from_form(schema, values)
        try:
            answer = ui.client().predict([record])
        except ApiRejected as error:
            errors = error.by_field(0)
            st.session_state.setdefault("predict_errors", {})[form_key] = errors
            st.session_state.pop("predict_result", None)
        else:
            errors = {}
            st.session_state.setdefault("predict_errors", {})[form_key] = {}
            p = answer.predictions[0]
            shown = (
                {"value": p.value, "model": ui.model_facts(answer.model_name, answer.model_version)}
                if p.is_value
                else {"label": p.label, "probabilities": p.probabilities}
            )
            st.session_state["predict_result"] = {
                **shown,
                "model_name": answer.model_name,
                "model_version": answer.model_version,
                "request_id": answer.request_id,
                "record": record,
            }

    unplaced: list[str] = []
    for name, problems in errors.items():
        if name in slots:
            slots[name].error("\n\n".join(problems), icon=":material/warning:")
        else:
            unplaced.extend(f"{name}: {p}" if name else p for p in problems)
    if errors:
        where = " · ".join(unplaced) if unplaced else "See the fields marked below."
        top.error(f"**The API refused this record.** {where}", icon=":material/warning:")
    result = st.session_state.get("predict_result")
    if result and not errors:
        with top:
            _result(result)


ui.guard(page, key="predict")
