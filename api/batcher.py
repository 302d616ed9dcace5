"""Micro-batching: concurrent single-record requests share one model call.

The first waiting request opens a batch; the batch closes when it holds `max_rows` rows or when
`max_wait` has passed since it opened, whichever comes first (both bounded). One call to the model
answers all of them; each caller gets its own row back, by position. A model error fails exactly the
callers of that batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

Predict = Callable[[dict[str, np.ndarray]], tuple[list[str], np.ndarray]]


class MicroBatcher:
    def __init__(
        self,
        predict: Predict,
        *,
        max_rows: int = 64,
        max_wait: float = 0.001,
        on_batch: Callable[[int], None] | None = None,
    ):
        self.predict = predict
        self.max_rows = max(1, max_rows)
        self.max_wait = max(0.0, max_wait)
        self.on_batch = on_batch
        self._queue: asyncio.Queue[tuple[dict[str, np.ndarray], asyncio.Future]] | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0

    async def start(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(), name="mlci-micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._queue is not None:
            while not self._queue.empty():
                _, future = self._queue.get_nowait()
                if not future.done():
                    future.set_exception(RuntimeError("server shutting down"))

    async def submit(self, row: dict[str, np.ndarray]) -> tuple[str, np.ndarray]:
        """Predict one row (each column an array of shape [1, 1]); returns (label, probabilities)."""
        loop = asyncio.get_running_loop()
        if self._queue is None:
            await self.start()
        elif loop is not self._loop:
            # Another event loop (a test client without lifespan, a second server in-process): the queue
            # belongs to the first loop, so answer directly rather than wait on a loop that is not ours.
            labels, probabilities = self.predict(row)
            return labels[0], probabilities[0]
        future: asyncio.Future = loop.create_future()
        assert self._queue is not None  # started above
        self._queue.put_nowait((row, future))
        return await future

    async def _collect(self) -> list[tuple[dict[str, np.ndarray], asyncio.Future]]:
        queue = self._queue
        assert queue is not None  # the loop task runs only after start()
        batch = [await queue.get()]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_rows:
            try:
                batch.append(queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            live = [(row, fut) for row, fut in batch if not fut.cancelled()]
            if not live:
                continue
            try:
                columns = {name: np.concatenate([row[name] for row, _ in live]) for name in live[0][0]}
                labels, probabilities = self.predict(columns)
            except Exception as error:  # noqa: BLE001 - handed to the callers, who answer 500
                for _, future in live:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.batches += 1
            if self.on_batch is not None:
                self.on_batch(len(live))
            for i, (_, future) in enumerate(live):
                if not future.done():
                    future.set_result((labels[i], probabilities[i]))
