"""What this API answered to /predict, by request id, for `mlci shadow report` to join.

Production's router gives each request an id (`$request_id`, sent as X-Request-ID) and mirrors a
share of them to the staging slot with the same id, so both APIs hold the answer to the same request
under the same id. Each API keeps only the answer (labels, probabilities, latency, status) in a
bounded ring: no raw request is stored. Only requests that take part in a comparison are kept:
production's router marks the requests it samples for the mirror (X-Mlci-Sampled) and the copies
reach staging through its shadow intake listener (X-Mlci-Shadow); both routers strip these headers
from outside requests, so a client can neither fill the ring nor pass an answer off as mirrored.

Several uvicorn workers: each keeps its own ring and, at most every FLUSH_SECONDS, writes it to
`<PROMETHEUS_MULTIPROC_DIR>/shadow/<pid>.json` (the directory the metrics already share); the
endpoint merges its own ring with the other workers' files. One worker: memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

RING_SIZE = 5000  # answers kept per worker
MAX_ROWS = 10  # rows kept per answer: a batch keeps its first 10 (bounds the ring at ~15 MB a worker)
MAX_BODY = 1 << 20  # responses bigger than this are kept without their predictions
MAX_PAGE = 2000
FLUSH_SECONDS = 1.0
SHADOW_HEADER = b"x-mlci-shadow"  # set by the shadow intake of staging's router on mirrored copies only
SAMPLED_HEADER = b"x-mlci-sampled"  # set by production's router on the requests it samples for the mirror


@dataclass(frozen=True)
class Page:
    answers: list[dict[str, Any]]
    next: int  # pass as `since` for the next page; equal to `since` when nothing newer exists
    more: bool


class AnswerRing:
    """This worker's last RING_SIZE answers, oldest first, and their shared copy for the other workers."""

    def __init__(self, size: int = RING_SIZE, directory: str | None = None):
        self.ring: deque[dict[str, Any]] = deque(maxlen=size)
        self.directory = directory
        self.pid = os.getpid()
        self._dirty = False
        self._last_t = 0
        if directory:
            os.makedirs(directory, exist_ok=True)

    def add(self, request_id: str, status: int, ms: float, body: bytes | None, shadow: bool) -> None:
        # Strictly increasing times inside a worker: `since` paging never skips an answer of ours.
        t = max(time.time_ns(), self._last_t + 1)
        self._last_t = t
        entry: dict[str, Any] = {"id": request_id, "t": t, "status": status, "ms": round(ms, 3), "shadow": shadow}
        if status == 200 and body is not None:
            entry.update(_predictions(body))
        self.ring.append(entry)
        self._dirty = True

    def snapshot(self) -> list[dict[str, Any]]:
        """This worker's answers now (taken on the event loop, which alone appends to the ring)."""
        return list(self.ring)

    def _pending(self) -> list[dict[str, Any]] | None:
        """What to write for the other workers, or None when nothing changed since the last write."""
        if not self.directory or not self._dirty:
            return None
        self._dirty = False
        return self.snapshot()

    def _write(self, entries: list[dict[str, Any]]) -> None:
        """Write this worker's ring for the others (atomically: a reader sees the old or the new file)."""
        assert self.directory is not None
        path = os.path.join(self.directory, f"{self.pid}.json")
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(orjson.dumps(entries))
        os.replace(tmp, path)

    async def flush_periodically(self) -> None:
        # Serialising thousands of answers takes milliseconds: done off the event loop, on a snapshot.
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            entries = self._pending()
            if entries is not None:
                await asyncio.to_thread(self._write, entries)

    def close(self) -> None:
        """A worker that exits takes its answers along: its file would be stale, not a live ring."""
        if self.directory:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(self.directory, f"{self.pid}.json"))

    def _others(self) -> list[dict[str, Any]]:
        """The other live workers' answers. A worker killed without its lifespan's end (SIGKILL, out of
        memory) leaves its file behind: a file whose process is gone is stale, removed and not read."""
        entries: list[dict[str, Any]] = []
        if not self.directory:
            return entries
        for path in glob.glob(os.path.join(self.directory, "*.json")):
            name = os.path.basename(path).removesuffix(".json")
            if name == str(self.pid) or not name.isdigit():
                continue
            if not _alive(int(name)):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                continue
            with contextlib.suppress(FileNotFoundError, orjson.JSONDecodeError), open(path, "rb") as handle:
                entries.extend(orjson.loads(handle.read()))
        return entries

    def page(self, since: int, limit: int, own: list[dict[str, Any]] | None = None) -> Page:
        """Answers recorded after `since` (ns since the epoch), oldest first, at most `limit`. `own`: a
        snapshot of this worker's ring taken on the event loop, so that this can run in a thread."""
        entries = (self.snapshot() if own is None else own) + self._others()
        newer = sorted((e for e in entries if e["t"] > since), key=lambda e: e["t"])
        chosen = newer[:limit]
        return Page(chosen, chosen[-1]["t"] if chosen else since, len(newer) > limit)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _predictions(body: bytes) -> dict[str, Any]:
    """Labels and probabilities (a regression: values) of a /predict answer, at most MAX_ROWS rows;
    nothing on a foreign shape."""
    if len(body) > MAX_BODY:
        return {"truncated": True}
    try:
        rows = orjson.loads(body)["predictions"]
        if rows and isinstance(rows[0], dict) and "value" in rows[0]:
            return {"values": [float(row["value"]) for row in rows[:MAX_ROWS]], "truncated": len(rows) > MAX_ROWS}
        labels = [str(row["label"]) for row in rows[:MAX_ROWS]]
        probabilities = [{str(k): float(v) for k, v in row["probabilities"].items()} for row in rows[:MAX_ROWS]]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return {}
    return {"labels": labels, "probabilities": probabilities, "truncated": len(rows) > MAX_ROWS}


class ShadowRecorder:
    """ASGI middleware: records this worker's answers to the POST /predict requests a router marked as
    sampled for the mirror (production) or as mirrored copies (staging); any other request passes.

    Sits inside RequestEnvelope, which has put the request id in scope["mlci"] already."""

    def __init__(self, app, *, ring: AnswerRing):
        self.app, self.ring = app, ring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        marks = {key for key, _ in scope["headers"] if key in (SHADOW_HEADER, SAMPLED_HEADER)}
        if not marks:
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500
        chunks: list[bytes] = []
        size = 0

        async def recording_send(message):
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 200 and size <= MAX_BODY:
                chunk = message.get("body", b"")
                size += len(chunk)
                chunks.append(chunk)
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            shadow = SHADOW_HEADER in marks
            request_id = (scope.get("mlci") or {}).get("request_id", "")
            self.ring.add(request_id, status, (time.perf_counter() - start) * 1000, b"".join(chunks), shadow)


def shadow_dir() -> str | None:
    """Where the workers share their rings: beside the metrics when there are several workers."""
    metrics = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return os.path.join(metrics, "shadow") if metrics else None
