"""An asyncio micro-batcher: concurrent requests share one ONNX session run.

Callers `await batcher.submit(item)`. A single worker task takes the first waiting item, then
collects more for at most `max_wait_ms` or until `max_size` items, runs `fn(items)` once in a
thread executor and resolves each caller's future with its own result. The wait is adaptive: when
the previous batch held a single item (an idle router), a lone request is dispatched at once, so
low traffic pays no batching delay; under concurrency requests also queue up while a run is in
progress, and the next batch takes all of them. If `fn` raises, every
caller of that batch gets the exception. Cancelled callers are skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class BatcherClosed(RuntimeError):
    """submit() after close()."""


class MicroBatcher(Generic[In, Out]):
    """Bounded-wait, bounded-size batching of blocking work run off the event loop."""

    def __init__(
        self,
        fn: Callable[[list[In]], Sequence[Out]],
        executor: Executor | None,
        max_size: int = 16,
        max_wait_ms: float = 2.0,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be >= 1")
        self._fn = fn
        self._executor = executor
        self.max_size = max_size
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self._queue: asyncio.Queue[tuple[In, asyncio.Future[Out]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0  # number of fn calls so far
        self.items = 0  # number of items processed so far
        self._last_size = 1

    async def submit(self, item: In) -> Out:
        if self._closed:
            raise BatcherClosed("the batcher is closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._worker(), name="onnx-microbatcher")
        fut: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, fut))
        return await fut

    async def _collect(self) -> list[tuple[In, asyncio.Future[Out]]]:
        batch = [await self._queue.get()]
        wait = self.max_wait if (self._last_size > 1 or not self._queue.empty()) else 0.0
        deadline = time.monotonic() + wait
        while len(batch) < self.max_size:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), timeout=left))
            except TimeoutError:
                break
        return batch

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            batch = [(i, f) for i, f in batch if not f.done()]
            if not batch:
                continue
            items = [i for i, _ in batch]
            self._last_size = len(items)
            try:
                results = await loop.run_in_executor(self._executor, self._fn, items)
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
        """Stop the worker; callers still queued get BatcherClosed."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            self._task = None
        while not self._queue.empty():
            _, f = self._queue.get_nowait()
            if not f.done():
                f.set_exception(BatcherClosed("the batcher was closed"))
