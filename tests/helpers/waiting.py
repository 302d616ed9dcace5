"""wait_until_answers: poll a URL until it answers, the one such loop shared by the test suites and the
benchmarks. It lives under tests/ because pytest (--import-mode=importlib) imports `tests.*` but not
`benchmarks.*`; benchmarks reach it by putting the repository root on sys.path. Only httpx: importing
it loads nothing of mlci."""

from __future__ import annotations

import subprocess
import time

import httpx


def wait_until_answers(
    url: str,
    timeout: float,
    *,
    poll: float = 0.3,
    request_timeout: float = 2,
    status: int = 200,
    process: subprocess.Popen | None = None,
) -> None:
    """Return once GET url answers `status`; after `timeout` seconds raise TimeoutError naming the URL and
    the last answer or error seen (what a caller's failure message needs). With `process` (the server
    being waited for), its exit ends the wait at once with the exit code."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise TimeoutError(f"{url}: the server exited with code {process.returncode} before answering")
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
