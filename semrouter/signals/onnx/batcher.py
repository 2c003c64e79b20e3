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


class _Lane(Generic[In, Out]):
    """One lane's queue (item, its cost, the caller's future; oldest first), its worker task and its executor."""

    def __init__(self, executor: Executor | None) -> None:
        self.executor = executor
        self.queue: deque[tuple[In, float, asyncio.Future[Out]]] = deque()
        self.arrived = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.last_size = 1  # the previous batch's size (adaptive wait)

    def drop_done(self) -> None:
        """Forget callers at the head of the queue that were cancelled while they waited."""
        while self.queue and self.queue[0][2].done():
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
    ) -> None:
        """`fn(items)` -> one result per item, run on `executor` (None: the loop's default). `cost(item)` >= 0
        (None: every item costs 0, so all are light: plain first come first served); `max_cost`: the most cost one
        batch holds (> 0; an item costing more runs alone); `light_cost`: items costing more go to the heavy
        lane; `heavy_executor`: where the heavy lane runs (None: `executor`, taking turns with the light lane).
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
        self._closed = False
        self.batches = 0  # number of fn calls so far
        self.items = 0  # number of items processed so far

    async def submit(self, item: In, heavy: bool = False) -> Out:
        """`fn`'s result for `item`, computed in a batch with others; `heavy`: the heavy lane whatever its cost (an
        item the light lane's run found heavier than its cost said). Raises what `fn` raised for that batch,
        BatcherClosed after close()."""
        if self._closed:
            raise BatcherClosed("the batcher is closed")
        c = float(self._cost(item))
        lane = self._lanes[1 if heavy or c > self.light_cost else 0]
        loop = asyncio.get_running_loop()
        if lane.task is None:
            lane.task = loop.create_task(self._worker(lane), name="onnx-microbatcher")
        fut: asyncio.Future[Out] = loop.create_future()
        lane.queue.append((item, c, fut))
        lane.arrived.set()
        return await fut

    async def _collect(self, lane: _Lane[In, Out]) -> list[tuple[In, asyncio.Future[Out]]]:
        lane.drop_done()
        while not lane.queue:
            lane.arrived.clear()
            await lane.arrived.wait()
            lane.drop_done()
        batch: list[tuple[In, asyncio.Future[Out]]] = []
        total = 0.0
        wait = self.max_wait if (lane.last_size > 1 or len(lane.queue) > 1) else 0.0
        deadline = time.monotonic() + wait
        while len(batch) < self.max_size:
            lane.drop_done()  # cancelled while waiting: no place in the batch
            if lane.queue:
                item, c, fut = lane.queue[0]
                if batch and total + c > self.max_cost:
                    break  # it opens the next batch
                lane.queue.popleft()
                batch.append((item, fut))
                total += c
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
            batch = await self._collect(lane)
            batch = [(i, f) for i, f in batch if not f.done()]
            if not batch:
                continue
            items = [i for i, _ in batch]
            lane.last_size = len(items)
            try:
                results = await loop.run_in_executor(lane.executor, self._fn, items)
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
                _, _, f = lane.queue.popleft()
                if not f.done():
                    f.set_exception(BatcherClosed("the batcher was closed"))
