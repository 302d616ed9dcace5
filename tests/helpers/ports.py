"""Free loopback ports for the servers a test or a benchmark starts."""

from __future__ import annotations

import socket


def reserve_ports(count: int = 1) -> list[int]:
    """Free loopback ports for servers a test starts (all bound at once, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
