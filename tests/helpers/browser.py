"""The browser side of the tests: Debian's chromium driven by Playwright, screenshots a person can look at,
a bounded prediction load and the switch marker's pixels. Shared by the browser suites and the Docker
suites that open a page (the `browser` fixture is in tests/fixtures/browser.py)."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "reports" / "screenshots"
CHROMIUM = os.environ.get("MLCI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOAD_SECONDS = 90.0  # the load loop's bound, whatever happens to the test


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.wait_for_timeout(600)  # let charts finish drawing
    # Streamlit scrolls inside its main block, so full_page alone cuts the page: grow the viewport to fit.
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
        "[data-testid=stMainBlockContainer]')].map(e => e.scrollHeight), 0)"
    )
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height) + 40, 4000))})
    page.wait_for_timeout(400)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


class Load:
    """Predictions through the proxy (or a router) from a thread, at about `rate` per second, bounded in
    time and count; an answer other than 200, or none, is kept in `failures`."""

    def __init__(self, url: str, example: dict, seconds: float = LOAD_SECONDS, max_requests: int = 10_000):
        self.url, self.example = url, example
        self.seconds, self.max_requests = seconds, max_requests
        self.rate = 20.0
        self.stop = threading.Event()
        self.sent = 0
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        end = time.monotonic() + self.seconds
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set() and time.monotonic() < end and self.sent < self.max_requests:
                try:
                    answer = client.post("/predict", json={"records": [self.example]})
                    if answer.status_code != 200:
                        self.failures.append(f"HTTP {answer.status_code}: {answer.text[:200]}")
                except httpx.HTTPError as error:  # a lost request is a failure to count, not the loop's end
                    self.failures.append(f"{type(error).__name__}: {error}")
                self.sent += 1
                time.sleep(1 / self.rate)


def red_pixels(png: bytes) -> int:
    """Pixels of the switch marker's colour (mlci.dashboard.traffic_charts.SWITCH_COLOUR) in a screenshot."""
    from PIL import Image

    from mlci.dashboard.traffic_charts import SWITCH_COLOUR

    target = tuple(int(SWITCH_COLOUR[i : i + 2], 16) for i in (1, 3, 5))
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for pixel in image.getdata() if all(abs(a - b) <= 12 for a, b in zip(pixel, target)))
