"""wait_until_answers: poll a URL until it answers, the one such loop shared by the test suites and the
benchmarks. It lives under tests/ because pytest (--import-mode=importlib) imports `tests.*` but not
`benchmarks.*`; benchmarks reach it by putting the repository root on sys.path. Only httpx: importing
it loads nothing of mlci."""

from __future__ import annotations

import time

import httpx


def wait_until_answers(
    url: str, timeout: float, *, poll: float = 0.3, request_timeout: float = 2, status: int = 200
) -> None:
    """Return once GET url answers `status`; after `timeout` seconds raise TimeoutError naming the URL and
    the last answer or error seen (what a caller's failure message needs)."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=request_timeout)
        except httpx.HTTPError as error:
            last = f"{type(error).__name__}: {error}"
        else:
            if response.status_code == status:
                return
            last = f"HTTP {response.status_code}"
        time.sleep(poll)
    raise TimeoutError(f"{url} did not answer {status} within {timeout:g} s (last: {last})")
