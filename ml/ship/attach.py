"""The engine's attached streams: the socket of `docker exec -i` or `docker attach` after the HTTP
upgrade. Input goes in, then end of input; the output comes back multiplexed (`demux`). The socket
is a local engine's (socket.SocketIO), an SSH engine's paramiko channel, or a TLS engine's SSL socket.
"""

from __future__ import annotations

import io
import socket
import struct
import time
from contextlib import suppress
from typing import Any


def demux(data: bytes) -> tuple[bytes, bytes]:
    """(stdout, stderr) of the engine's multiplexed stream: frames of an 8-byte header (stream 1 or 2,
    three zero bytes, the payload's length, big-endian) and the payload."""
    out, err = bytearray(), bytearray()
    at = 0
    while at + 8 <= len(data):
        kind, size = struct.unpack(">BxxxL", data[at : at + 8])
        (err if kind == 2 else out).extend(data[at + 8 : at + 8 + size])
        at += 8 + size
    return bytes(out), bytes(err)


def raw(sock: Any) -> Any:
    """The socket itself: a local engine's attach socket comes wrapped (socket.SocketIO); an SSH
    engine's is a paramiko channel, a TLS engine's an SSL socket."""
    return getattr(sock, "_sock", sock)


def send(sock: Any, text: str) -> None:
    raw(sock).sendall(text.encode())


def close_write(sock: Any) -> None:
    """End of input, the socket still open for the output."""
    inner = raw(sock)
    if hasattr(inner, "shutdown_write"):  # paramiko
        inner.shutdown_write()
    else:
        inner.shutdown(socket.SHUT_WR)


def _response_file(sock: Any) -> Any:
    """The file the HTTP response read its headers from (docker-py keeps the response on the socket)."""
    response = getattr(sock, "_response", None)
    return getattr(getattr(getattr(response, "raw", None), "_fp", None), "fp", None)


def read_all(sock: Any, deadline: float) -> bytes:
    """Everything the other end sends until it closes; TimeoutError at `deadline` (time.monotonic()).

    The HTTP response reads its headers through a buffered file, which may read the stream's first
    bytes with them when they arrive together (over SSH they often do: a short command's whole output).
    Those bytes are the output's start: a local or TLS engine's buffered reader is read through, an SSH
    engine's channel file gives up what it holds, then the socket is read."""
    inner, data = raw(sock), bytearray()
    source = _response_file(sock)
    read = inner.recv
    if isinstance(source, io.BufferedReader):
        read = source.read1  # its buffer first, then the socket (with the timeout set on it below)
    elif isinstance(getattr(source, "_rbuffer", None), bytes | bytearray):  # paramiko's ChannelFile
        data += source._rbuffer
        source._rbuffer = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no end of output")
        inner.settimeout(remaining)
        chunk = read(65536)
        if not chunk:
            return bytes(data)
        data += chunk


def close(sock: Any) -> None:
    inner = raw(sock)
    with suppress(Exception):
        inner.shutdown(socket.SHUT_RDWR)
    with suppress(Exception):
        inner.close()
    with suppress(Exception):
        sock.close()
    response = getattr(sock, "_response", None)  # docker-py keeps the HTTP response alive on the socket
    if response is not None:
        with suppress(Exception):
            response.close()
