"""uvicorn's httptools protocol with a deadline for request headers (uvicorn has no header timeout).

uvicorn's `timeout_keep_alive` runs only between requests and is cancelled by any byte received, so a
client that connects and sends nothing, or trickles its headers a byte at a time, holds a connection
for ever (slowloris). This protocol closes a connection whose request headers are not complete within
MLCI_HEADER_TIMEOUT seconds of the connection opening, or of the first byte of a later request on it
(between requests, uvicorn's keep-alive timeout bounds the idle time). The body
has its own bound (MLCI_BODY_TIMEOUT, in mlci.api.envelope.RequestEnvelope: it can answer a 408 there).

Selected with `uvicorn.run(http="mlci.api.protocol:HeaderDeadlineProtocol")` (mlci.api.server does).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mlci.api.logs import APP_LOGGER, log_event
from mlci.api.settings import Settings


class HeaderDeadlineProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Settings were checked by mlci.api.server before uvicorn started; workers inherit the environment.
        self.header_timeout = Settings.from_env().header_timeout
        self.header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.header_deadline is None:  # the first request keeps the deadline armed at connection time
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self.header_deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _expire(self) -> None:
        self.header_deadline = None
        if not self.transport.is_closing():
            log_event(
                logging.getLogger(APP_LOGGER),
                logging.INFO,
                event="header_timeout",
                client=self.client[0] if self.client else None,
                seconds=self.header_timeout,
            )
            self.transport.close()
