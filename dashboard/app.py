"""The mlci dashboard: `streamlit run <mlci.dashboard>/app.py` (or `mlci dashboard`), API from MLCI_API_URL.

Every prediction and every model fact comes from the prediction API; the Models page also reads
the MLflow registry when MLFLOW_TRACKING_URI is set.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from mlci.dashboard import ui

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="mlci dashboard", page_icon=":material/science:", layout="wide")

PAGES = [
    st.Page(
        HERE / "pages" / "live.py", title="Live model", icon=":material/monitor_heart:", url_path="live", default=True
    ),
    st.Page(HERE / "pages" / "predict.py", title="Predict", icon=":material/online_prediction:", url_path="predict"),
    st.Page(HERE / "pages" / "batch.py", title="Batch", icon=":material/table_view:", url_path="batch"),
    st.Page(HERE / "pages" / "models.py", title="Models", icon=":material/inventory_2:", url_path="models"),
]

page = st.navigation(PAGES)
with st.sidebar:
    ui.sidebar_badge()
page.run()
