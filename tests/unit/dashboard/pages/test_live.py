"""The Live model page's traffic charts, run through Streamlit's AppTest against real API processes
behind a proxy this test switches (tests/helpers/live_charts_proxy.py)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.helpers.live_charts_proxy import SwitchProxy

REFRESH = "1"  # the page samples /metrics at most every REFRESH/2 s


@pytest.fixture(scope="module")
def pair(apis, bundles):
    """v1 on blue, v2 on green: the two slots of one environment."""
    blue = apis.start(bundles["v1"], colour="blue", environment="production")
    green = apis.start(bundles["v2"], colour="green", environment="production")
    return blue, green


@pytest.fixture()
def proxy(pair, free_port):
    router = SwitchProxy(pair[0].url, free_port()).start()
    yield router
    router.stop()


def drive(url: str, count: int) -> None:
    """`count` predictions of the API's example record, plus one the API refuses (a 422)."""
    example = httpx.get(url + "/schema").json()["example"]
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(count):
            assert client.post("/predict", json={"records": [example]}).status_code == 200
        assert client.post("/predict", json={"records": [{**example, "mean_radius": "x"}]}).status_code == 422


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def charts(at) -> list[str]:
    """The specs of the traffic charts (the drift panel's chart has no time axis)."""
    return [c.proto.spec for c in at.get("vega_lite_chart") if "time (UTC)" in c.proto.spec]


def test_traffic_charts_follow_requests_and_mark_a_switch(proxy, pair, open_app, texts):
    at = open_app(proxy.url, MLCI_DASHBOARD_REFRESH=REFRESH)
    assert "Collecting: the figures need two readings" in texts(at)
    assert not charts(at)

    drive(proxy.url, 20)
    time.sleep(0.6)
    at.run()
    assert not at.exception
    assert float(metric(at, "Requests/s")) > 0
    assert metric(at, "p50 latency").endswith(" ms") and metric(at, "p99 latency").endswith(" ms")
    assert metric(at, "Errors (5xx)") == "0.0 %"
    assert len(charts(at)) == 4
    assert "Blue/green switches" not in texts(at)

    proxy.switch(pair[1].url)  # the router moves traffic to green, whose counters are its own
    drive(proxy.url, 5)
    time.sleep(0.6)
    at.run()
    assert not at.exception
    assert "v1 (blue) → v2 (green)" in texts(at)
    assert len(charts(at)) == 4
    assert all('"type": "rule"' in spec for spec in charts(at))  # the switch marker on every chart
    drive(proxy.url, 5)
    time.sleep(0.6)
    at.run()
    assert float(metric(at, "Requests/s")) > 0  # figures again after the switch, from green's counters
    assert "Serving `breast-cancer-classifier` version **2**" in texts(at)


def test_missing_metrics_say_so_and_keep_the_page(proxy, open_app, texts):
    proxy.refuse.add("/metrics")
    at = open_app(proxy.url, MLCI_DASHBOARD_REFRESH=REFRESH)
    shown = texts(at)
    assert "No traffic figures" in shown and "not here" in shown
    assert "Serving `breast-cancer-classifier` version **1**" in shown  # the rest of the page is there


def test_metrics_that_are_not_prometheus_text_are_an_api_error(free_port):
    """Something else on the API's URL (here a server answering JSON): a clear error, not a parse of JSON."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mlci.dashboard.client import ApiClient, ApiServerError

    class Json(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            body = b'{"status": "ok"}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Json)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with ApiClient(f"http://127.0.0.1:{server.server_address[1]}") as client, pytest.raises(ApiServerError) as err:
            client.metrics()
        assert "did not return Prometheus metrics (application/json, 16 bytes)" in err.value.message
    finally:
        server.shutdown()
        server.server_close()
