"""MicroBatcher: batching, result routing, error propagation (no ONNX needed)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from semrouter.signals.onnx.batcher import BatcherClosed, MicroBatcher


async def test_concurrent_calls_share_runs_and_results_map_back() -> None:
    calls: list[list[int]] = []

    def fn(items: list[int]) -> list[int]:
        calls.append(list(items))
        time.sleep(0.01)  # a "session run"
        return [i * 10 for i in items]

    b: MicroBatcher[int, int] = MicroBatcher(fn, None, max_size=8, max_wait_ms=5)
    try:
        res = await asyncio.gather(*(b.submit(i) for i in range(20)))
    finally:
        await b.close()
    assert res == [i * 10 for i in range(20)]
    assert b.batches == len(calls) < 20
    assert max(len(c) for c in calls) <= 8
    assert sorted(i for c in calls for i in c) == list(range(20))


async def test_exception_reaches_every_waiter_and_batcher_recovers() -> None:
    fail = threading.Event()
    fail.set()

    def fn(items: list[str]) -> list[str]:
        if fail.is_set():
            raise ValueError("boom")
        return [s.upper() for s in items]

    b: MicroBatcher[str, str] = MicroBatcher(fn, None, max_size=4, max_wait_ms=5)
    try:
        res = await asyncio.gather(*(b.submit(s) for s in "abc"), return_exceptions=True)
        assert all(isinstance(r, ValueError) and str(r) == "boom" for r in res)
        fail.clear()
        assert await b.submit("x") == "X"
    finally:
        await b.close()


async def test_single_call_waits_at_most_about_max_wait() -> None:
    b: MicroBatcher[int, int] = MicroBatcher(lambda xs: xs, None, max_size=16, max_wait_ms=2)
    try:
        await b.submit(0)  # warm up the worker and executor
        t = time.perf_counter()
        assert await b.submit(1) == 1
        assert time.perf_counter() - t < 0.25
    finally:
        await b.close()


async def test_wrong_result_count_is_an_error_and_closed_refuses() -> None:
    b: MicroBatcher[int, int] = MicroBatcher(lambda xs: [], None)
    with pytest.raises(RuntimeError, match="returned 0 results"):
        await b.submit(1)
    await b.close()
    with pytest.raises(BatcherClosed):
        await b.submit(2)
