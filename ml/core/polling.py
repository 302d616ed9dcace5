"""Waiting for something to come up (a container's /ready, a router's health), with tenacity.

A probe returns a value once the thing is up and None while it is not yet; it raises to give up
early (e.g. the container exited: waiting longer cannot help). `poll` returns the probe's value, or
None when the time is up, so each caller words its own timeout for ops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

T = TypeVar("T")


def poll(probe: Callable[[], T | None], *, timeout: float, interval: float = 0.2) -> T | None:
    """Call `probe` every `interval` seconds until it returns a value (returned) or `timeout` passes (None)."""
    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda value: value is None),
        retry_error_callback=lambda _state: None,
        reraise=True,
    )
    return retrying(probe)
