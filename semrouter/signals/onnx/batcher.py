"""An asyncio micro-batcher: concurrent requests share one ONNX session run.

Callers `await batcher.submit(item)`. A single worker task takes the first waiting item, then
collects more for at most `max_wait_ms` or until `max_size` items, runs `fn(items)` once in a
thread executor and resolves each caller's future with its own result. The wait is adaptive: when
the previous batch held a single item (an idle router), a lone request is dispatched at once, so
low traffic pays no batching delay; under concurrency requests also queue up while a run is in
progress, and the next batch takes all of them. If `fn` raises, every
caller of that batch gets the exception. Cancelled callers are skipped (they take no place in a batch).

Heavy items cannot hold light ones up (the analyzer's callers wait a bounded time for their answer, so a
queue of heavy work would otherwise time every other caller out). With `cost` given, each item has a cost
(the analyzer: characters of text):
- a batch holds at most `max_cost` of it (always at least one item), so one run is never many heavy items;
- items of cost up to `light_cost` wait in a light lane, the others in a heavy lane, each first come first
  served and batched by a worker of its own. With `heavy_executor` the heavy lane runs on it, beside the light
  lane's runs (ONNX Runtime releases the GIL): a light item never waits for a heavy run. Without it both lanes'
  runs queue on `executor` and take turns: a light item waits for at most one heavy run.

Items may carry a deadline (the caller's budget, monotonic s). Each lane keeps its recent pace (seconds per unit of
cost, a moving average over its runs), and a batch stops taking items once its expected run would end past the
earliest deadline in it; an item that cannot finish in time even alone is failed at once (`DeadlineExceeded`, a
TimeoutError) instead of run. Without this, under more load than the lanes can serve every run outlasted its
callers' budget: each caller timed out while its batch still ran, the CPU was spent on answers nobody read, and
no request at all got its signals (12 clients sending ~900-character prompts on 2 busy cores: 0 of ~250).
A run costs a fixed part whatever its items (the session call, language detection): a run's cost counts at least
`min_run_cost` units in its pace, or a few runs of 2-character prompts (6 ms each, 3 ms "per character") made a
910-character prompt (~105 ms) look like 8 s and refused it. And the pace only moves when something runs: when a lane
has refused items and not run for `_STALE_S`, the next item it would refuse alone runs instead, as a probe whose time
replaces the estimate, so one slow run (a stalled CPU) cannot refuse every later item for good.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class BatcherClosed(RuntimeError):
    """submit() after close()."""


class DeadlineExceeded(TimeoutError):
    """The item's deadline would pass before its run could end, at the lane's recent pace: it is not run."""


_PACE_WEIGHT = 0.3  # weight of the last run in a lane's pace (seconds per unit of cost)
_STALE_S = 1.0  # a lane that has not run for this long measures its pace again before it refuses anything alone


class _Lane(Generic[In, Out]):
    """One lane's queue (item, its cost, the caller's future; oldest first), its worker task and its executor."""

    def __init__(self, executor: Executor | None) -> None:
        self.executor = executor
        # item, its cost, its deadline (monotonic s; None: none), the caller's future
        self.queue: deque[tuple[In, float, float | None, asyncio.Future[Out]]] = deque()
        self.arrived = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.last_size = 1  # the previous batch's size (adaptive wait)
        self.pace: float | None = None  # seconds per unit of cost of recent runs (None: no run yet)
        self.min_work = 1.0  # the least work a run counts (its fixed part), units of cost
        self.last_run = 0.0  # when the last run ended (monotonic s)
        self.probe = False  # the batch being collected is a probe: its run's pace replaces the estimate

    def late(self, work: float, deadline: float | None, now: float) -> bool:
        """Whether a run of `work` units of cost started now would end after `deadline`, at the recent pace."""
        return deadline is not None and self.pace is not None and now + max(work, self.min_work) * self.pace > deadline

    def ran(self, work: float, seconds: float, replace: bool = False) -> None:
        """Record a run of `work` units of cost that took `seconds`; `replace`: the run's pace is the estimate."""
        self.last_run = time.monotonic()
        sample = seconds / max(work, self.min_work, 1.0)
        if self.pace is None or replace:
            self.pace = sample
        else:
            self.pace = (1 - _PACE_WEIGHT) * self.pace + _PACE_WEIGHT * sample

    def drop_done(self) -> None:
        """Forget callers at the head of the queue that were cancelled while they waited."""
        while self.queue and self.queue[0][3].done():
            self.queue.popleft()


class MicroBatcher(Generic[In, Out]):
    """Bounded-wait, bounded-size batching of blocking work run off the event loop."""

    def __init__(
        self,
        fn: Callable[[list[In]], Sequence[Out]],
        executor: Executor | None,
        max_size: int = 16,
        max_wait_ms: float = 2.0,
        cost: Callable[[In], float] | None = None,
        max_cost: float = float("inf"),
        light_cost: float = float("inf"),
        heavy_executor: Executor | None = None,
        min_run_cost: float = 1.0,
    ) -> None:
        """`fn(items)` -> one result per item, run on `executor` (None: the loop's default). `cost(item)` >= 0
        (None: every item costs 0, so all are light: plain first come first served); `max_cost`: the most cost one
        batch holds (> 0; an item costing more runs alone); `light_cost`: items costing more go to the heavy
        lane; `heavy_executor`: where the heavy lane runs (None: `executor`, taking turns with the light lane);
        `min_run_cost`: the least cost a run counts in a lane's pace (a run's fixed part, in units of cost).
        Raises ValueError for max_size < 1 or max_cost <= 0."""
        if max_size < 1:
            raise ValueError("max_size must be >= 1")
        if not max_cost > 0:
            raise ValueError("max_cost must be > 0")
        self._fn = fn
        self.max_size = max_size
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self._cost = cost or (lambda _item: 0.0)
        self.max_cost = max_cost
        self.light_cost = light_cost
        self._lanes: tuple[_Lane[In, Out], _Lane[In, Out]] = (
            _Lane(executor), _Lane(heavy_executor if heavy_executor is not None else executor))
        for lane in self._lanes:
            lane.min_work = max(1.0, min(min_run_cost, max_cost))
        self._closed = False
        self.batches = 0  # number of fn calls so far
        self.items = 0  # number of items processed so far

    def _work(self, cost: float) -> float:
        """An item's cost as a lane's pace counts it: at least 1, at most `max_cost` (the analyzer's work stops growing
        with the text: a prompt past its chunk bound costs more characters, not more encoder rows, so a longer one is
        never refused on a straight-line guess)."""
        return min(max(cost, 1.0), self.max_cost)

    async def submit(self, item: In, heavy: bool = False, deadline: float | None = None) -> Out:
        """`fn`'s result for `item`, computed in a batch with others; `heavy`: the heavy lane whatever its cost (an
        item the light lane's run found heavier than its cost said); `deadline` (time.monotonic() s): when the
        caller stops waiting. Raises what `fn` raised for that batch, DeadlineExceeded when the lane's pace says the
        item's run cannot end by `deadline` (it is not run), BatcherClosed after close()."""
        if self._closed:
            raise BatcherClosed("the batcher is closed")
        c = float(self._cost(item))
        lane = self._lanes[1 if heavy or c > self.light_cost else 0]
        loop = asyncio.get_running_loop()
        if lane.task is None:
            lane.task = loop.create_task(self._worker(lane), name="onnx-microbatcher")
        fut: asyncio.Future[Out] = loop.create_future()
        lane.queue.append((item, c, deadline, fut))
        lane.arrived.set()
        return await fut

    async def _collect(self, lane: _Lane[In, Out]) -> list[tuple[In, float, asyncio.Future[Out]]]:
        lane.drop_done()
        while not lane.queue:
            lane.arrived.clear()
            await lane.arrived.wait()
            lane.drop_done()
        batch: list[tuple[In, float, asyncio.Future[Out]]] = []
        total = 0.0
        work = 0.0  # the batch's cost as its pace counts it (each item at least 1)
        due: float | None = None  # the earliest deadline in the batch
        wait = self.max_wait if (lane.last_size > 1 or len(lane.queue) > 1) else 0.0
        deadline = time.monotonic() + wait
        while len(batch) < self.max_size:
            lane.drop_done()  # cancelled while waiting: no place in the batch
            if lane.queue:
                item, c, dl, fut = lane.queue[0]
                if batch and total + c > self.max_cost:
                    break  # it opens the next batch
                first = dl if due is None else due if dl is None else min(due, dl)
                now = time.monotonic()
                if lane.late(work + self._work(c), first, now):
                    if batch:
                        break  # the batch would end past a deadline in it: it opens the next batch
                    if now - lane.last_run > _STALE_S:  # no run lately to say so: run it alone and measure again
                        lane.queue.popleft()
                        lane.probe = True
                        batch.append((item, c, fut))
                        break
                    lane.queue.popleft()  # not even alone in time: its caller would time out while it ran
                    fut.set_exception(DeadlineExceeded("the signals could not be computed within the budget"))
                    continue
                lane.queue.popleft()
                batch.append((item, c, fut))
                total += c
                work += self._work(c)
                due = first
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                break
            lane.arrived.clear()
            try:
                await asyncio.wait_for(lane.arrived.wait(), timeout=left)
            except TimeoutError:
                break
        return batch

    async def _worker(self, lane: _Lane[In, Out]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            lane.probe = False
            collected = await self._collect(lane)
            collected = [(i, c, f) for i, c, f in collected if not f.done()]
            if not collected:
                continue
            batch = [(i, f) for i, _, f in collected]
            items = [i for i, _ in batch]
            lane.last_size = len(items)
            try:
                t0 = time.monotonic()
                results = await loop.run_in_executor(lane.executor, self._fn, items)
                lane.ran(sum(self._work(c) for _, c, _ in collected), time.monotonic() - t0, replace=lane.probe)
                if len(results) != len(items):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
            except asyncio.CancelledError:
                for _, f in batch:
                    if not f.done():
                        f.set_exception(BatcherClosed("the batcher was closed"))
                raise
            except Exception as e:  # noqa: BLE001 - delivered to every waiter
                for _, f in batch:
                    if not f.done():
                        f.set_exception(e)
                continue
            finally:
                self.batches += 1
                self.items += len(items)
            for (_, f), r in zip(batch, results, strict=True):
                if not f.done():
                    f.set_result(r)

    async def close(self) -> None:
        """Stop the workers; callers still queued get BatcherClosed."""
        self._closed = True
        for lane in self._lanes:
            if lane.task is not None:
                lane.task.cancel()
                try:
                    await lane.task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001
                    pass
                lane.task = None
            while lane.queue:
                _, _, _, f = lane.queue.popleft()
                if not f.done():
                    f.set_exception(BatcherClosed("the batcher was closed"))
