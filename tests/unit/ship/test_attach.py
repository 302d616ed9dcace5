"""mlci.ship.attach: the engine's multiplexed stream split into stdout and stderr."""

from __future__ import annotations

import io
import socket
import struct
import time
from types import SimpleNamespace

from mlci.ship import attach


def test_the_multiplexed_stream_is_split_into_stdout_and_stderr():
    def frame(kind: int, data: bytes) -> bytes:
        return struct.pack(">BxxxL", kind, len(data)) + data

    data = frame(1, b"out 1\n") + frame(2, b"err\n") + frame(1, b"out 2\n") + frame(1, b"")
    assert attach.demux(data) == (b"out 1\nout 2\n", b"err\n")
    assert attach.demux(data[:-3]) == (b"out 1\nout 2\n", b"err\n")  # a cut frame header is dropped


def frame(kind: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", kind, len(data)) + data


UPGRADE = b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nUpgrade: tcp\r\n\r\n"


def attached(buffered_by_response: bool):
    """An exec's attached socket after the HTTP upgrade, as docker-py hands it over, where the engine
    sent the upgrade and a short command's whole output in one write; the headers read through a
    buffered file, as http.client reads them."""
    ours, engine = socket.socketpair()
    engine.sendall(UPGRADE + frame(1, b'{"records": []}\n'))
    engine.close()
    stream = socket.SocketIO(ours, "rb")
    headers = io.BufferedReader(stream)
    while headers.readline() not in (b"\r\n", b""):
        pass
    # docker-py keeps the response on the socket (else collecting it would close the socket).
    response = SimpleNamespace(raw=SimpleNamespace(_fp=SimpleNamespace(fp=headers)))
    stream._response = response if buffered_by_response else None  # type: ignore[attr-defined]
    stream._kept = headers  # type: ignore[attr-defined]
    return stream


def test_output_that_came_with_the_upgrade_headers_is_not_lost():
    # The output sits in the response's buffer: the socket alone has nothing more (what lost a smoke
    # test's reference rows over SSH: "JSONDecodeError: Expecting value").
    assert attach.read_all(attached(buffered_by_response=False), time.monotonic() + 5) == b""
    data = attach.read_all(attached(buffered_by_response=True), time.monotonic() + 5)
    assert attach.demux(data) == (b'{"records": []}\n', b"")


def test_an_ssh_channel_file_gives_up_what_it_read_past_the_headers():
    ours, engine = socket.socketpair()
    engine.sendall(frame(2, b"rest\n"))
    engine.close()
    channel_file = SimpleNamespace(_rbuffer=frame(1, b"start\n"))  # paramiko's ChannelFile keeps it in _rbuffer
    # A paramiko Channel takes attributes; a plain socket does not: this stands for the channel.
    channel = SimpleNamespace(
        _sock=ours, _response=SimpleNamespace(raw=SimpleNamespace(_fp=SimpleNamespace(fp=channel_file)))
    )

    data = attach.read_all(channel, time.monotonic() + 5)

    assert attach.demux(data) == (b"start\n", b"rest\n")
    assert channel_file._rbuffer == b""
