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


async def test_a_batch_holds_at_most_max_cost_and_a_costlier_item_runs_alone() -> None:
    calls: list[list[int]] = []

    def fn(items: list[int]) -> list[int]:
        calls.append(list(items))
        time.sleep(0.01)
        return items

    b: MicroBatcher[int, int] = MicroBatcher(fn, None, max_size=16, max_wait_ms=20, cost=float, max_cost=10)
    try:
        assert await asyncio.gather(*(b.submit(x) for x in (4, 4, 4, 30, 1))) == [4, 4, 4, 30, 1]
    finally:
        await b.close()
    assert all(sum(c) <= 10 or len(c) == 1 for c in calls), calls
    assert [30] in calls


async def test_light_items_never_wait_for_heavy_runs_on_their_own_executor() -> None:
    """A queue of heavy items (each a 0.3 s run) on the heavy lane's executor: a light item is answered within a
    small fraction of one heavy run, however many are queued (in one lane it waited for all of them)."""
    from concurrent.futures import ThreadPoolExecutor

    def fn(items: list[int]) -> list[int]:
        time.sleep(0.3 if items[0] > 100 else 0.005)
        return items

    light, heavy = ThreadPoolExecutor(1), ThreadPoolExecutor(1)
    b: MicroBatcher[int, int] = MicroBatcher(fn, light, max_size=16, max_wait_ms=2, cost=float, max_cost=1000,
                                             light_cost=100, heavy_executor=heavy)
    try:
        flood = [asyncio.ensure_future(b.submit(1000)) for _ in range(6)]
        await asyncio.sleep(0.05)  # a heavy run is in progress, five more queued
        t = time.perf_counter()
        assert await b.submit(7) == 7
        assert time.perf_counter() - t < 0.15
        assert not all(f.done() for f in flood)
        await asyncio.gather(*flood)
    finally:
        await b.close()
        light.shutdown()
        heavy.shutdown()


async def test_lanes_sharing_one_executor_take_turns() -> None:
    """Without a heavy executor the lanes' runs queue on one thread: a light item waits for the heavy run in
    progress at most, not for the heavy items queued behind it."""
    from concurrent.futures import ThreadPoolExecutor

    order: list[str] = []

    def fn(items: list[int]) -> list[int]:
        order.append("heavy" if items[0] > 100 else "light")
        time.sleep(0.1 if items[0] > 100 else 0.001)
        return items

    one = ThreadPoolExecutor(1)
    b: MicroBatcher[int, int] = MicroBatcher(fn, one, max_size=16, max_wait_ms=2, cost=float, max_cost=1000,
                                             light_cost=100)
    try:
        flood = [asyncio.ensure_future(b.submit(1000)) for _ in range(4)]
        await asyncio.sleep(0.03)
        await b.submit(7)
        assert order.index("light") <= 2, order  # after the run in progress (and the one already handed over)
        await asyncio.gather(*flood)
    finally:
        await b.close()
        one.shutdown()


async def test_cancelled_callers_take_no_place_in_a_batch() -> None:
    calls: list[list[int]] = []
    gate = threading.Event()

    def fn(items: list[int]) -> list[int]:
        calls.append(list(items))
        gate.wait(2)
        return items

    b: MicroBatcher[int, int] = MicroBatcher(fn, None, max_size=2, max_wait_ms=1)
    try:
        first = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0.05)  # the first run is in progress
        dropped = [asyncio.ensure_future(b.submit(i)) for i in (1, 2)]
        kept = [asyncio.ensure_future(b.submit(i)) for i in (3, 4)]
        await asyncio.sleep(0.01)
        for f in dropped:
            f.cancel()
        gate.set()
        assert await asyncio.gather(first, *kept) == [0, 3, 4]
    finally:
        await b.close()
    assert calls == [[0], [3, 4]]


async def test_an_item_sent_heavy_runs_in_the_heavy_lane_whatever_its_cost() -> None:
    """submit(item, heavy=True): the analyzer's retry of a job its light run found over one row."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    def fn(items: list[int]) -> list[str]:
        return [threading.current_thread().name for _ in items]

    light = ThreadPoolExecutor(1, thread_name_prefix="light")
    heavy = ThreadPoolExecutor(1, thread_name_prefix="heavy")
    b: MicroBatcher[int, str] = MicroBatcher(fn, light, cost=float, light_cost=100, heavy_executor=heavy)
    try:
        assert (await b.submit(1)).startswith("light")
        assert (await b.submit(1, heavy=True)).startswith("heavy")
        assert (await b.submit(1000)).startswith("heavy")
    finally:
        await b.close()
        light.shutdown()
        heavy.shutdown()


async def _closed_loop(b: MicroBatcher[int, int], clients: int, budget_s: float, seconds: float,
                       deadlines: bool) -> tuple[int, int]:
    """`clients` callers, each sending again as soon as it has its answer or its budget ran out (as Envoy's clients
    do): (answered in budget, timed out or refused)."""
    ok = late = 0
    stop = time.monotonic() + seconds

    async def client(k: int) -> None:
        nonlocal ok, late
        i = 0
        while time.monotonic() < stop:
            i += 1
            try:
                dl = time.monotonic() + budget_s if deadlines else None
                await asyncio.wait_for(b.submit(k * 1000 + i, deadline=dl), budget_s)
                ok += 1
            except TimeoutError:  # DeadlineExceeded too
                late += 1

    await asyncio.gather(*(client(k) for k in range(clients)))
    return ok, late


async def test_under_overload_runs_fit_their_callers_budget_instead_of_none_being_answered() -> None:
    """12 callers in a closed loop, a run costing 60 ms per item, a 300 ms budget. Runs took every caller waiting
    (up to max_size), so once the queue was full each run lasted past its callers' budget and nearly nothing was
    answered in time (the CPU spent on answers nobody read; the router's 503 signals_unavailable for everyone,
    RESULTS review12). With deadlines a run holds only what can end in time, and an item that cannot is refused
    at once: most of the lane's capacity (300 ms / 60 ms, ~5 a budget) becomes answers."""
    runs: list[int] = []

    def fn(items: list[int]) -> list[int]:
        runs.append(len(items))
        time.sleep(0.06 * len(items))
        return items

    results = {}
    for deadlines in (False, True):
        b: MicroBatcher[int, int] = MicroBatcher(fn, None, max_size=16, max_wait_ms=2)
        try:
            results[deadlines] = await _closed_loop(b, clients=12, budget_s=0.3, seconds=3.0, deadlines=deadlines)
        finally:
            await b.close()
    (ok_without, _), (ok_with, refused) = results[False], results[True]
    assert ok_with >= 3 * max(ok_without, 5), results  # 3 s of 60 ms items: at most ~50 answers
    assert refused > 0


async def test_an_item_that_cannot_end_by_its_deadline_is_refused_without_a_run() -> None:
    from semrouter.signals.onnx.batcher import DeadlineExceeded
    runs: list[list[int]] = []

    def fn(items: list[int]) -> list[int]:
        runs.append(list(items))
        time.sleep(0.05 * len(items))
        return items

    b: MicroBatcher[int, int] = MicroBatcher(fn, None, cost=lambda i: 100.0)
    try:
        assert await b.submit(1) == 1  # no pace yet: run (0.05 s for 100 units)
        with pytest.raises(DeadlineExceeded):
            await b.submit(2, deadline=time.monotonic() + 0.01)  # needs ~0.05 s
        assert await b.submit(3, deadline=time.monotonic() + 1.0) == 3
        assert await b.submit(4) == 4  # no deadline: always run
    finally:
        await b.close()
    assert [r for run in runs for r in run] == [1, 3, 4]


async def test_a_long_item_is_not_refused_on_a_straight_line_guess() -> None:
    """The analyzer's work stops growing past its chunk bound: an item's cost counts at most max_cost in the pace, so
    a 10,000x longer text is not refused as if it took 10,000x longer."""
    def fn(items: list[int]) -> list[int]:
        time.sleep(0.02)
        return items

    b: MicroBatcher[int, int] = MicroBatcher(fn, None, cost=lambda i: float(i), max_cost=200.0)
    try:
        assert await b.submit(100) == 100  # pace: ~0.2 ms per unit
        assert await b.submit(1_000_000, deadline=time.monotonic() + 0.5) == 1_000_000  # counted as 200: ~40 ms
    finally:
        await b.close()


async def test_short_items_fixed_cost_does_not_make_a_longer_one_look_late() -> None:
    """A run has a fixed part whatever its items (the analyzer: ~6 ms for a 2-character prompt, ~105 ms for 910
    characters). Counted per unit of cost, three 2-unit runs set a pace of ~10 ms a unit and a 900-unit item with a
    0.5 s budget looked like 9 s: refused without a run, and only short items ever ran again to move the pace.
    min_run_cost counts each run as at least that much work."""
    def fn(items: list[int]) -> list[int]:
        time.sleep(0.02 + 0.0001 * sum(items))
        return items

    b: MicroBatcher[int, int] = MicroBatcher(fn, None, cost=lambda i: float(i), min_run_cost=200.0)
    try:
        for _ in range(3):
            assert await b.submit(2, deadline=time.monotonic() + 0.5) == 2
        assert await b.submit(900, deadline=time.monotonic() + 0.5) == 900  # ~0.11 s
    finally:
        await b.close()


async def test_a_lane_that_only_refuses_measures_its_pace_again() -> None:
    """The pace moves only when something runs: after one slow run (a stalled CPU) every item was refused, so
    nothing ran and the pace stayed wrong for good. A lane that has not run for a while runs the next item it would
    refuse as a probe, and the probe's time is the new pace."""
    from semrouter.signals.onnx.batcher import _STALE_S, DeadlineExceeded
    slow = [True]

    def fn(items: list[int]) -> list[int]:
        time.sleep(0.5 if slow[0] else 0.005)
        return items

    b: MicroBatcher[int, int] = MicroBatcher(fn, None, cost=lambda i: 100.0)
    try:
        assert await b.submit(1) == 1  # 0.5 s for 100 units
        slow[0] = False  # the stall is over
        with pytest.raises(DeadlineExceeded):  # just measured: refused
            await b.submit(2, deadline=time.monotonic() + 0.2)
        await asyncio.sleep(_STALE_S + 0.1)
        assert await b.submit(3, deadline=time.monotonic() + 0.2) == 3  # a probe: ~5 ms
        assert await b.submit(4, deadline=time.monotonic() + 0.2) == 4  # the pace it measured
    finally:
        await b.close()
