"""`python -m api.healthcheck`: the image's HEALTHCHECK — GET /ready over TCP or the slot's unix socket.

Exit 0 when ready, 1 otherwise (Docker's contract). Standard library only: no curl in the image.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def ready(env: dict[str, str] | None = None, timeout: float = 2.0) -> bool:
    env = dict(os.environ if env is None else env)
    if uds := env.get("MLCI_UDS"):
        connection: http.client.HTTPConnection = UnixConnection(uds, timeout)
    else:
        connection = http.client.HTTPConnection("127.0.0.1", int(env.get("MLCI_PORT", "8000")), timeout=timeout)
    try:
        connection.request("GET", "/ready")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(0 if ready() else 1)
