"""`python -m mlci.api.healthcheck`: the image's HEALTHCHECK — GET /ready over TCP or the slot's unix socket.

Exit 0 when ready, 1 otherwise (Docker's contract). Standard library and mlci.core.env only: no curl in
the image, and nothing slow to import (it runs every few seconds).
"""

from __future__ import annotations

import http.client
import socket
import sys
from collections.abc import Mapping

from mlci.core import env
from mlci.core.env import EnvError


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def ready(environ: Mapping[str, str] | None = None, timeout: float = 2.0) -> bool:
    try:
        uds, port = env.UDS.get(environ), env.PORT.get(environ)
    except EnvError:
        return False  # the API itself refuses to start on such a setting
    if uds:
        connection: http.client.HTTPConnection = UnixConnection(uds, timeout)
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/ready")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(0 if ready() else 1)
