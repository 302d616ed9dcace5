"""A regression model in a real browser: Debian's chromium (Playwright) → `streamlit run` → a real API process
serving loans' debt_ratio (tests/helpers/regression.py).

Predict shows the number and a chart of the training target's deciles with the prediction marked, Batch a
value column and a histogram, Live the histogram of the values the API served (from its
`mlci_prediction_value` buckets); no label, class or probability anywhere. Screenshots go to
reports/screenshots/regression_*.png.
"""

from __future__ import annotations

import httpx
import pytest

from mlci.dashboard.regression import number
from tests.helpers.browser import shot
from tests.helpers.regression import MODEL_NAME, VERSION, regression_csv
from tests.helpers.streamlit_app import streamlit_app

REFRESH = "1.5"
DEADLINE_MS = 20_000
CHARTS = '[data-testid="stVegaLiteChart"]'


@pytest.fixture(scope="module")
def api(apis, regression_bundle):
    return apis.start(regression_bundle, colour="blue", environment="production", extra_env={"MLCI_MAX_BATCH": "16"})


@pytest.fixture(scope="module")
def dashboard(api, tmp_path_factory, free_port):
    log = tmp_path_factory.mktemp("dashboard-regression-e2e") / "streamlit.log"
    env = {"MLCI_DASHBOARD_REFRESH": REFRESH}
    with streamlit_app(api.url, free_port(), log, env=env, drop=("MLFLOW_TRACKING_URI",)) as url:
        yield url


def go(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).click()


def metric(page, label: str):
    return page.locator('[data-testid="stMetric"]', has_text=label).locator('[data-testid="stMetricValue"]')


def drawn(chart) -> None:
    """A Vega chart that rendered (its canvas or svg is on screen)."""
    from playwright.sync_api import expect

    expect(chart.locator("canvas, svg").first).to_be_visible()


def test_a_regression_shows_numbers_and_their_distribution(dashboard, api, browser):
    from playwright.sync_api import expect

    expect.set_options(timeout=DEADLINE_MS)
    example = httpx.get(api.url + "/schema").json()["example"]
    expected = httpx.post(api.url + "/predict", json={"records": [example]}).json()["predictions"][0]["value"]
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(DEADLINE_MS)
    main = page.locator('[data-testid="stMain"]')
    try:
        # Live first: the page samples /metrics from now on, so the histogram counts what the UI sends next
        page.goto(dashboard + "/")
        expect(main).to_contain_text(f"Serving {MODEL_NAME} version {VERSION}")
        expect(main).to_contain_text("regression (predicts a number)")
        expect(main).to_contain_text("Primary metric (rmse, lower is better)")
        expect(main).not_to_contain_text("classes")

        # Predict: the value, where it sits in the training target, the chart with the prediction marked
        go(page, "Predict")
        page.get_by_role("button", name="Predict", exact=True).click()
        expect(metric(page, "Predicted value")).to_have_text(number(expected))
        expect(main).to_contain_text(f"{number(expected)} is about the")
        expect(main).to_contain_text("percentile of the training target")
        drawn(main.locator(CHARTS).first)
        expect(main).not_to_contain_text("Confidence")
        shot(page, "regression_predict")

        # Batch: a value column and the histogram of the values, no label counts
        go(page, "Batch")
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
            files=[{"name": "loans.csv", "mimeType": "text/csv", "buffer": regression_csv(40)}]
        )
        page.get_by_role("button", name="Predict 40 rows").click()
        expect(main).to_contain_text(f"40 of 40 rows predicted by model version(s) v{VERSION}")
        expect(main).to_contain_text("Predicted values")
        drawn(main.locator(CHARTS).first)
        expect(metric(page, "mean prediction")).to_be_visible()
        expect(main).not_to_contain_text("Labels")
        shot(page, "regression_batch")

        # Live: the 41 values the UI asked for, in the API's buckets (the training target's deciles)
        go(page, "Live model")
        expect(main).to_contain_text("41 predicted values since the last switch")
        served = main.locator(CHARTS).nth(3)  # requests/s, latency, errors, then the served values
        drawn(served)
        expect(main).to_contain_text("a tenth of the training targets lies in each bin")
        assert page.locator('[data-testid="stException"]').count() == 0
        shot(page, "regression_live")
        # Leave the Live page's busy refresh before the browser goes: a message in flight as the socket closes
        # makes Streamlit's own websocket handler log a traceback (its disconnect race, not the dashboard's).
        go(page, "Predict")
        expect(page.get_by_role("button", name="Predict", exact=True)).to_be_visible()
    finally:
        context.close()
