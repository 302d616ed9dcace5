"""mlci.core.polling: the one wait loop behind the router's and the new slot's start-up checks."""

from __future__ import annotations

import time

import pytest

from mlci.core import polling
from mlci.core.errors import CheckFailed


def test_returns_the_first_value_once_the_probe_answers():
    answers = iter([None, None, 7])
    assert polling.poll(lambda: next(answers), timeout=5, interval=0.01) == 7


def test_gives_none_when_the_time_is_up_and_stops_near_the_timeout():
    started = time.monotonic()
    assert polling.poll(lambda: None, timeout=0.3, interval=0.05) is None
    assert 0.25 <= time.monotonic() - started < 2


def test_a_probe_that_gives_up_stops_the_wait_with_its_own_error():
    calls = []

    def probe():
        calls.append(1)
        raise CheckFailed("the container exited at start")

    with pytest.raises(CheckFailed, match="exited at start"):
        polling.poll(probe, timeout=5, interval=0.01)
    assert len(calls) == 1
