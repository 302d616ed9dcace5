"""mlci.ship.attach: the engine's multiplexed stream split into stdout and stderr."""

from __future__ import annotations

import struct

from mlci.ship import attach


def test_the_multiplexed_stream_is_split_into_stdout_and_stderr():
    def frame(kind: int, data: bytes) -> bytes:
        return struct.pack(">BxxxL", kind, len(data)) + data

    data = frame(1, b"out 1\n") + frame(2, b"err\n") + frame(1, b"out 2\n") + frame(1, b"")
    assert attach.demux(data) == (b"out 1\nout 2\n", b"err\n")
    assert attach.demux(data[:-3]) == (b"out 1\nout 2\n", b"err\n")  # a cut frame header is dropped
