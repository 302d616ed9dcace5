"""The micro-batcher coalesces concurrent single-record calls and gives each caller its own row."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from mlci.api.batcher import MicroBatcher
from mlci.contract.bundle import load_bundle
from mlci.ship.export import onnx_columns


def test_each_caller_gets_its_own_row_under_concurrency(loans_bundle, loans_fitted):
    bundle = load_bundle(loans_bundle)
    frame = loans_fitted.test_frame
    columns = onnx_columns(frame, loans_fitted.config)
    expected_labels, expected_proba = bundle.predict(columns)
    sizes: list[int] = []

    async def scenario():
        batcher = MicroBatcher(bundle.predict, max_rows=16, max_wait=0.002, on_batch=sizes.append)
        await batcher.start()
        rng = random.Random(7)

        async def caller(i: int):
            await asyncio.sleep(rng.random() * 0.005)  # arrive in a shuffled order
            row = {name: column[i : i + 1] for name, column in columns.items()}
            return i, await batcher.submit(row)

        order = list(range(len(frame))) * 3
        rng.shuffle(order)
        results = await asyncio.gather(*(caller(i) for i in order))
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert len(results) == 3 * len(frame)
    for i, (label, proba) in results:
        assert label == expected_labels[i]
        assert proba.tolist() == expected_proba[i].tolist()
    assert max(sizes) > 1, "concurrent calls were never coalesced"
    assert max(sizes) <= 16 and sum(sizes) == len(results)
    assert len(set(expected_labels)) > 1  # the rows really differ, so a mix-up would show


def test_a_failing_batch_fails_only_its_callers():
    calls = []

    def predict(columns):
        calls.append(len(columns["x"]))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return [str(v) for v in columns["x"][:, 0]], columns["x"]

    async def scenario():
        batcher = MicroBatcher(predict, max_rows=8, max_wait=0.01)
        await batcher.start()
        first = await asyncio.gather(
            *(batcher.submit({"x": np.array([[float(i)]])}) for i in range(3)), return_exceptions=True
        )
        second = await batcher.submit({"x": np.array([[5.0]])})
        await batcher.stop()
        return first, second

    first, second = asyncio.run(scenario())
    assert all(isinstance(r, RuntimeError) for r in first)
    assert second[0] == "5.0"
    assert calls[0] == 3  # the three concurrent callers did share one call


def test_wait_is_bounded():
    async def scenario():
        batcher = MicroBatcher(lambda c: (["a"], np.zeros((1, 1))), max_rows=64, max_wait=0.005)
        await batcher.start()
        loop = asyncio.get_running_loop()
        start = loop.time()
        await batcher.submit({"x": np.zeros((1, 1))})
        elapsed = loop.time() - start
        await batcher.stop()
        return elapsed

    assert asyncio.run(scenario()) < 0.1


@pytest.mark.parametrize("max_rows", [1, 4])
def test_batches_never_exceed_max_rows(max_rows):
    sizes = []

    def predict(columns):
        n = len(columns["x"])
        return ["a"] * n, np.zeros((n, 1))

    async def scenario():
        batcher = MicroBatcher(predict, max_rows=max_rows, max_wait=0.01, on_batch=sizes.append)
        await batcher.start()
        await asyncio.gather(*(batcher.submit({"x": np.zeros((1, 1))}) for _ in range(20)))
        await batcher.stop()

    asyncio.run(scenario())
    assert max(sizes) == max_rows and sum(sizes) == 20
