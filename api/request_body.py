"""The request body as the app reads it: its size limit (checked on the declared length and while the
body streams in), its time limit, and the bounded drain after a refusal."""

from __future__ import annotations

import asyncio

# After refusing a body, read (and drop) at most this much of it, for this long, before closing:
# closing with unread data makes the kernel send a reset, and a client still writing its body then
# never reads the 413. Bounded, so refusing a body costs little more than reading an allowed one.
DRAIN_BYTES = 16 << 20
DRAIN_SECONDS = 5.0


class BodyTooLarge(Exception):
    pass


class BodyTimeout(Exception):
    pass


def content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before the app sees it
    return None


def expects_continue(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(key == b"expect" and value.lower() == b"100-continue" for key, value in headers)


class BodyReader:
    """The app's `receive`: counts body bytes against the limit and bounds the time the body takes."""

    def __init__(self, receive, limit: int, timeout: float):
        self._receive = receive
        self.limit = limit
        self.deadline = asyncio.get_running_loop().time() + timeout
        self.received = 0
        self.done = False  # the whole body was read, or the client went away
        self.disconnected = False

    async def receive(self):
        if self.done:  # after the body only http.disconnect comes: no deadline on waiting for it
            return await self._receive()
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            raise BodyTimeout() from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.done = not message.get("more_body", False)
            if self.received > self.limit:
                raise BodyTooLarge()
        elif message["type"] == "http.disconnect":
            self.done = self.disconnected = True
        return message

    async def drain(self, max_bytes: int, seconds: float) -> None:
        """Read and drop the rest of a refused body, within bounds (see DRAIN_BYTES)."""
        drained = 0
        try:
            async with asyncio.timeout(seconds):
                while not self.done and drained < max_bytes:
                    message = await self._receive()
                    drained += len(message.get("body", b""))
                    self.done = message["type"] != "http.request" or not message.get("more_body", False)
        except TimeoutError:
            pass
