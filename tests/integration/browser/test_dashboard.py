"""End to end in a real browser: Debian's chromium (Playwright) → `streamlit run` → a real API process.

Submits the form, checks the prediction and the version shown, then swaps the API behind the
dashboard's URL for a second model version (stop the process on port P, start the other bundle on P:
a blue/green switch as seen from outside) and checks the page shows the new version within 15 s
without a reload. Screenshots of every page go to reports/screenshots/.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.helpers.browser import SHOTS, shot
from tests.helpers.streamlit_app import streamlit_app

SWITCH_DEADLINE_MS = 15_000
REFRESH = "1.5"  # seconds between live-model checks in this test's dashboard


@pytest.fixture(scope="module")
def api_port(free_port) -> int:
    return free_port()


@pytest.fixture(scope="module")
def blue(apis, bundles, api_port):
    return apis.start(
        bundles["v1"], port=api_port, colour="blue", environment="production", extra_env={"MLCI_MAX_BATCH": "16"}
    )


@pytest.fixture(scope="module")
def dashboard(blue, registry_store, tmp_path_factory, free_port):
    """`mlci dashboard`'s launcher (mlci.dashboard.launch.run) in a process of its own, stopped at teardown."""
    port = free_port()
    log = tmp_path_factory.mktemp("dashboard-e2e") / "streamlit.log"
    env = {"MLFLOW_TRACKING_URI": str(registry_store["uri"]), "MLCI_DASHBOARD_REFRESH": REFRESH}
    # The Models page takes the model's name from the API's /version, not from MLCI_MODEL_NAME.
    with streamlit_app(blue.url, port, log, env=env, drop=("MLCI_MODEL_NAME",)) as url:
        yield url


def go(page, title: str) -> None:
    """Client-side navigation through the sidebar (a websocket page switch, not a browser reload)."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).click()


def field(page, name: str):
    return page.get_by_role("spinbutton", name=name, exact=True)


def request_id(page) -> str:
    """The request id of the prediction on screen (a 32-hex code element), or ''."""
    ids = page.locator("code", has_text=re.compile("^[0-9a-f]{32}$"))
    return ids.first.inner_text() if ids.count() else ""


def no_traceback(page) -> None:
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and 'File "' not in body, body[-2000:]
    assert page.locator('[data-testid="stException"]').count() == 0


def test_dashboard_in_a_real_browser(dashboard, blue, apis, bundles, api_port, browser, demo_csv):
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)  # the first Models page imports mlflow: seconds on a busy agent
    schema = httpx.get(blue.url + "/schema").json()
    expected = httpx.post(blue.url + "/predict", json={"records": [schema["example"]]}).json()["predictions"][0]
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    sidebar = page.locator('[data-testid="stSidebar"]')
    main = page.locator('[data-testid="stMain"]')
    try:
        # Live model
        page.goto(dashboard + "/")
        expect(main).to_contain_text("Serving breast-cancer-classifier version 1")
        expect(main).to_contain_text("alice")  # trained by
        expect(main).to_contain_text("1111111aaaa")  # commit
        expect(main).to_contain_text("1" * 64)  # data fingerprint
        expect(main).to_contain_text("0.9700")  # primary metric
        expect(sidebar).to_contain_text("v1")
        shot(page, "live_model")

        # Predict: the form, prefilled from the schema, answered by the API
        go(page, "Predict")
        submit = page.get_by_role("button", name="Predict", exact=True)
        expect(submit).to_be_visible()
        expect(field(page, "mean_radius")).to_have_value(f"{schema['example']['mean_radius']:.6g}")
        submit.click()
        expect(main).to_contain_text("Answered by breast-cancer-classifier v1")
        expect(page.locator('[data-testid="stMetricValue"]').first).to_have_text(expected["label"])
        shot(page, "predict")

        # A value the API refuses: its message sits under the field it names
        field(page, "mean_texture").fill("-2")
        field(page, "mean_texture").press("Enter")
        submit.click()
        expect(main).to_contain_text("greater than or equal to 0")
        expect(main).to_contain_text("The API refused this record")
        shot(page, "predict_field_error")
        field(page, "mean_texture").fill(str(schema["example"]["mean_texture"]))
        field(page, "mean_texture").press("Enter")

        # Batch: upload, check, send in chunks of 16, show and offer the results
        go(page, "Batch")
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
            files=[{"name": "rows.csv", "mimeType": "text/csv", "buffer": demo_csv(40)}]
        )
        send = page.get_by_role("button", name="Predict 40 rows")
        expect(send).to_be_visible()
        expect(main).to_contain_text("3 request(s)")
        send.click()
        expect(main).to_contain_text("40 of 40 rows predicted by model version(s) v1")
        expect(page.get_by_role("button", name="Download results (CSV)")).to_be_visible()
        shot(page, "batch")

        # Models: the MLflow registry, model name taken from the API
        go(page, "Models")
        expect(main).to_contain_text("roc_auc over versions")
        expect(main).to_contain_text("@production")
        expect(
            page.locator('[data-testid="stVegaLiteChart"], [data-testid="stArrowVegaLiteChart"]').first
        ).to_be_visible()
        shot(page, "models")

        # The swap: back on Predict, then a new model version behind the same URL
        go(page, "Predict")
        before = request_id(page)
        page.get_by_role("button", name="Predict", exact=True).click()
        expect(main).to_contain_text("Answered by breast-cancer-classifier v1")
        expect(page.locator("code", has_text=re.compile("^[0-9a-f]{32}$")).first).not_to_have_text(before)
        page.evaluate("window.__mlciNoReload = 42")
        blue.stop()
        green = apis.start(
            bundles["v2"], port=api_port, colour="green", environment="production", extra_env={"MLCI_MAX_BATCH": "16"}
        )
        switched = time.monotonic()
        expect(sidebar).to_contain_text("Serving breast-cancer-classifier v2", timeout=SWITCH_DEADLINE_MS)
        expect(sidebar).to_contain_text("green slot")
        expect(sidebar).to_contain_text("Model changed")
        seen_after = time.monotonic() - switched
        assert seen_after < SWITCH_DEADLINE_MS / 1000
        assert page.evaluate("window.__mlciNoReload") == 42, "the page was reloaded"
        page.get_by_role("button", name="Predict", exact=True).click()
        expect(main).to_contain_text("Answered by breast-cancer-classifier v2")
        shot(page, "predict_after_switch")
        go(page, "Live model")
        expect(main).to_contain_text("Serving breast-cancer-classifier version 2")
        expect(main).to_contain_text("The served model changed")
        expect(main).to_contain_text("bob")
        assert page.evaluate("window.__mlciNoReload") == 42, "the page was reloaded"
        shot(page, "live_model_after_switch")

        # The API stops: a banner and a retry button, never a traceback
        green.stop()
        expect(main).to_contain_text("The prediction API is unavailable", timeout=SWITCH_DEADLINE_MS)
        expect(page.get_by_role("button", name="Retry now")).to_be_visible()
        expect(sidebar).to_contain_text("API unavailable")
        no_traceback(page)
        shot(page, "api_down")
        go(page, "Predict")
        expect(main).to_contain_text("The prediction API is unavailable")
        no_traceback(page)
        shot(page, "api_down_predict")

        # ... and the page recovers by itself when the API is back (no click on Retry)
        apis.start(bundles["v2"], port=api_port, colour="green", environment="production")
        expect(page.get_by_role("button", name="Predict", exact=True)).to_be_visible(timeout=SWITCH_DEADLINE_MS)
        expect(sidebar).not_to_contain_text("API unavailable")
        no_traceback(page)
        print(f"new version shown {seen_after:.1f} s after the new API was ready; screenshots in {SHOTS}")
    finally:
        context.close()
