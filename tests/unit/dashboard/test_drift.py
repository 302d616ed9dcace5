"""The Live model page's drift view, rendered by Streamlit's AppTest from a running API (a real process)."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split
from streamlit.testing.v1 import AppTest

from mlci.core import config as config_module
from mlci.core.config import Drift, Monitoring
from mlci.dashboard import drift
from mlci.learn.model import build_pipeline, model_frame
from mlci.ship.export import export_bundle
from tests.helpers.streamlit_app import streamlit_app

DEMO_CONFIG = Path(__file__).resolve().parents[3] / "mlci.yaml"
SHIFTED = "worst_area"
MIN_RECORDS = 150


@pytest.fixture(scope="module")
def drift_bundle(tmp_path_factory):
    """The demo model with its training distribution, min_records small enough for a short test."""
    config = config_module.load(DEMO_CONFIG)
    config = config.model_copy(
        update={
            "model": config.model.model_copy(
                update={"params": {"n_estimators": 10, "max_depth": 3, "random_state": 0}}
            ),
            "monitoring": Monitoring(drift=Drift(min_records=MIN_RECORDS)),
        }
    )
    frame = pd.read_csv(config.data_path)
    x, y = model_frame(frame, config), frame[config.data.target].astype(str)
    x_train, x_test, y_train, _ = train_test_split(
        x, y, test_size=config.split.test_size, random_state=config.split.seed, stratify=y
    )
    out = tmp_path_factory.mktemp("dashboard-drift") / "bundle"
    metadata = {"name": config.model_name, "version": "5", "metrics": {"roc_auc": 0.97}, "primary_metric": "roc_auc"}
    export_bundle(build_pipeline(config).fit(x_train, y_train), config, metadata, x_test, out, x_train)
    return out, x_train


def send(url: str, rows: pd.DataFrame, count: int, shift: str | None = None) -> None:
    rng = np.random.default_rng(7)
    sample = rows.iloc[rng.integers(0, len(rows), count)].reset_index(drop=True)
    if shift:
        sample[shift] = rng.choice(rows[shift][rows[shift] >= rows[shift].quantile(0.8)].to_numpy(), count)
    response = httpx.post(url + "/predict", json={"records": sample.to_dict(orient="records")}, timeout=30)
    assert response.status_code == 200, response.text


def drift_table(at: AppTest) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if list(d.value.columns) == ["feature", "psi", "threshold", "drifted"])


def test_live_page_shows_the_drifted_feature_over_its_threshold(apis, drift_bundle, open_app, texts):
    bundle, rows = drift_bundle
    api = apis.start(bundle, colour="green", environment="production")
    send(api.url, rows, 200, shift=SHIFTED)
    at = open_app(api.url)
    assert "#### Input drift" in texts(at)
    warning = " ".join(w.value for w in at.warning)
    assert "1 feature(s) drifted" in warning and SHIFTED in warning
    table = drift_table(at)
    assert table.iloc[0]["feature"] == SHIFTED and bool(table.iloc[0]["drifted"])  # the drifted one comes first
    assert table.iloc[0]["psi"] > table.iloc[0]["threshold"] == 0.2
    assert not table.iloc[1:]["drifted"].any()
    charts = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert len(charts) == 1 and '"psi"' in charts[0] and '"tick"' in charts[0]  # the bars and the threshold ticks
    assert "threshold 0.2" in texts(at) and "200 records" in texts(at)
    assert "Figures since start, 0 min ago (less than the 60 min window)" in texts(at)  # what they cover
    at.selectbox(key="drift-feature").set_value(SHIFTED).run()
    bins = next(d.value for d in at.dataframe if list(d.value.columns) == ["bin", "training", "live"])
    assert bins["training"].sum() == pytest.approx(1, abs=1e-5) and bins["live"].sum() == pytest.approx(1)


def test_live_page_says_when_too_few_records_or_no_drift(apis, drift_bundle, open_app):
    bundle, rows = drift_bundle
    api = apis.start(bundle)
    at = open_app(api.url)
    assert any(f"0 of the {MIN_RECORDS} records needed" in i.value for i in at.info)
    send(api.url, rows, 400)
    at.run()
    assert any("No feature drifted" in s.value for s in at.success)
    assert not drift_table(at)["drifted"].any()


def test_live_page_without_a_training_distribution_still_works(api_v1, open_app):
    at = open_app(api_v1.url)
    assert {m.label: m.value for m in at.metric}["Version"] == "1"
    assert any("Drift unavailable" in i.value and "distribution.json" in i.value for i in at.info)


def _panel_script() -> None:
    import os

    from mlci.dashboard import drift
    from mlci.dashboard.client import ApiClient

    drift.panel(ApiClient(os.environ["DRIFT_TEST_URL"]))


@pytest.mark.parametrize("where", ["dead", "older api"])
def test_the_drift_panel_survives_an_api_that_cannot_answer(where, api_v1, dead_url, monkeypatch):
    # "older api": a base URL under which GET /drift is the API's own JSON 404, as from an API before drift.
    monkeypatch.setenv("DRIFT_TEST_URL", dead_url if where == "dead" else api_v1.url + "/before-drift")
    at = AppTest.from_function(_panel_script, default_timeout=30).run()
    assert not at.exception
    expected = "Drift unavailable: cannot reach" if where == "dead" else "This API does not report drift (404"
    assert any(expected in i.value for i in at.info), [i.value for i in at.info]


def test_the_scope_line_says_what_the_figures_cover():
    windowed = {"scope": "the last 60 min, summed over this API's workers", "records": 1200, "records_total": 54000}
    assert drift.scope_line(windowed) == (
        "Figures over the last 60 min, summed over this API's workers: 1,200 records (54,000 since start)."
    )
    young = {"scope": "since start, 12 min ago (less than the 60 min window)", "records": 240, "records_total": 240}
    assert drift.scope_line(young) == "Figures since start, 12 min ago (less than the 60 min window): 240 records."
    older_api = {"scope": "every record answered since this API started, summed over its workers", "records": 9}
    assert drift.scope_line(older_api).startswith("Figures over every record answered since this API started")


def test_bins_frame_of_an_unknown_feature_is_empty():
    assert drift.bins_frame({"features": []}, "nope").empty
    assert drift.drift_frame({"features": [{"name": "a", "psi": None, "threshold": 0.2}]}).iloc[0]["psi"] == 0.0


# -- in a real browser: Debian's chromium (Playwright) → `streamlit run` → the API ---------------------
CHROMIUM = os.environ.get("MLCI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = Path(__file__).resolve().parents[3] / "reports" / "screenshots"


@pytest.fixture()
def streamlit_on(free_port, tmp_path):
    """streamlit_on(api_url) -> the dashboard's URL, through `mlci dashboard`'s launcher; stopped at teardown."""
    with ExitStack() as running:

        def start(api_url: str) -> str:
            log = tmp_path / f"streamlit-{free_port()}.log"
            env = {"MLCI_DASHBOARD_REFRESH": "1.5"}
            return running.enter_context(streamlit_app(api_url, free_port(), log, env=env))

        yield start


def test_drift_view_in_a_real_browser(apis, drift_bundle, streamlit_on):
    from playwright.sync_api import expect, sync_playwright

    bundle, rows = drift_bundle
    api = apis.start(bundle, colour="blue", environment="production")
    send(api.url, rows, 200, shift=SHIFTED)
    url = streamlit_on(api.url)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2400})
            page.set_default_timeout(30_000)
            page.goto(url + "/")
            main = page.locator('[data-testid="stMain"]')
            expect(main).to_contain_text("Input drift", timeout=30_000)
            expect(main).to_contain_text("1 feature(s) drifted")
            expect(main).to_contain_text(SHIFTED)
            # The drift chart is the page's last: the four traffic charts above it appear once the API
            # has two /metrics samples, so how many charts there are depends on when the page is read.
            chart = page.locator('[data-testid="stVegaLiteChart"]').last
            expect(chart).to_be_visible()
            expect(chart.locator("canvas, svg").first).to_be_visible()  # drawn, not only laid out
            assert "Traceback" not in page.locator("body").inner_text()
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.wait_for_timeout(800)  # let the chart finish drawing
            page.screenshot(path=str(SHOTS / "live_drift.png"), full_page=True)
        finally:
            browser.close()
