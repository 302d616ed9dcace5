"""The Live model charts in a real browser: Debian's chromium (Playwright) → `streamlit run` → a proxy
this test switches (the router in miniature) → two real API processes, v1 on blue and v2 on green.

Load runs through the proxy while the page is open: the requests/s figure and the charts change by
themselves (no reload); then the proxy moves traffic to green and the page marks the switch.
Screenshots go to reports/screenshots/live_charts_*.png.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.helpers.browser import Load, red_pixels, shot
from tests.helpers.live_charts_proxy import SwitchProxy
from tests.helpers.streamlit_app import streamlit_app

REFRESH = "1.5"
DEADLINE_MS = 20_000


@pytest.fixture(scope="module")
def pair(apis, bundles):
    blue = apis.start(bundles["v1"], colour="blue", environment="production")
    green = apis.start(bundles["v2"], colour="green", environment="production")
    return blue, green


@pytest.fixture(scope="module")
def proxy(pair, free_port):
    router = SwitchProxy(pair[0].url, free_port()).start()
    yield router
    router.stop()


@pytest.fixture()
def load(proxy):
    example = httpx.get(proxy.url + "/schema").json()["example"]
    driver = Load(proxy.url, example)
    driver.thread.start()
    yield driver
    driver.stop.set()
    driver.thread.join(timeout=15)


@pytest.fixture(scope="module")
def dashboard(proxy, tmp_path_factory, free_port):
    port = free_port()
    log = tmp_path_factory.mktemp("live-charts") / "streamlit.log"
    with streamlit_app(
        proxy.url, port, log, env={"MLCI_DASHBOARD_REFRESH": REFRESH}, drop=("MLFLOW_TRACKING_URI",)
    ) as url:
        yield url


def test_live_charts_update_and_mark_a_switch(dashboard, proxy, pair, load, browser):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(DEADLINE_MS)
    main = page.locator('[data-testid="stMain"]')
    rps = page.locator('[data-testid="stMetric"]', has_text="Requests/s").locator('[data-testid="stMetricValue"]')
    charts = page.locator('[data-testid="stVegaLiteChart"]')  # requests/s first, then latency, errors, classes
    try:
        page.goto(dashboard + "/")
        expect(main).to_contain_text("Serving breast-cancer-classifier version 1")
        expect(rps).to_be_visible()
        expect(charts.nth(3).locator("canvas, svg").first).to_be_visible()  # four traffic charts, drawn
        page.evaluate("window.__mlciNoReload = 7")
        expect(main).to_contain_text("p99 latency")
        first = rps.inner_text()
        assert float(first) > 0, first
        shot(page, "live_charts_under_load")
        chart_before = charts.first.screenshot()
        assert red_pixels(chart_before) == 0  # no switch yet: no marker

        load.rate = 4.0  # a slower load: the figure on screen follows by itself
        expect(rps).not_to_have_text(first, timeout=DEADLINE_MS)
        second = rps.inner_text()
        assert float(second) != float(first)
        shot(page, "live_charts_updated")
        assert charts.first.screenshot() != chart_before  # the chart itself was redrawn with new points

        proxy.switch(pair[1].url)  # the router moves traffic to green (v2)
        switched = time.monotonic()
        expect(main).to_contain_text("v1 (blue) → v2 (green)", timeout=DEADLINE_MS)
        expect(main).to_contain_text("Blue/green switches")
        expect(main).to_contain_text("Serving breast-cancer-classifier version 2")
        seen = time.monotonic() - switched
        assert page.evaluate("window.__mlciNoReload") == 7, "the page was reloaded"
        assert page.locator('[data-testid="stException"]').count() == 0
        # The chart redraws with the marker at a refresh (every 1.5 s; slower beside the other suites): poll.
        marked, deadline = 0, time.monotonic() + DEADLINE_MS / 1000
        while marked < 20 and time.monotonic() < deadline:
            page.wait_for_timeout(500)
            marked = red_pixels(charts.first.screenshot())
        assert marked >= 20, f"no switch marker drawn on the requests/s chart within {DEADLINE_MS / 1000:g} s"
        shot(page, "live_charts_after_switch")
        assert load.sent > 0
        print(f"switch marked {seen:.1f} s after the proxy moved; {load.sent} requests sent")
    finally:
        context.close()
