"""Background upkeep of one cache backend: LRU hit times, expiry, `max_entries`, and reconnecting.

`Maintenance.run_once` is one pass: while the backend is marked down (the shared `Breaker` is open) it
probes it (the backend's cheap optional `probe()`, else assumed up) and reconnects as soon as it answers;
otherwise it writes the hit times collected since the last pass, deletes expired entries and evicts down
to `max_entries` (`lru` or `fifo`). `start()` runs a pass every `purge_interval_seconds`, and every
`Breaker.probe_s` while the backend is down (the breaker can open at any time, so the loop wakes at least
every 0.5 s). Failures are logged and counted in the cache's counters; the loop never dies.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import structlog

from semrouter.cache.config import CacheConfig
from semrouter.cache.health import Breaker
from semrouter.cache.types import CacheBackend, CacheBackendError, CacheSchemaError

log = structlog.get_logger("semrouter.cache")


class Maintenance:
    def __init__(self, cfg: CacheConfig, backend: CacheBackend, breaker: Breaker, counters: Counter[str],
                 clock: Callable[[], float], failed: Callable[[str, Exception | None], None]) -> None:
        self.cfg = cfg
        self._backend = backend
        self._breaker = breaker
        self._counters = counters
        self._clock = clock
        self._failed = failed
        self.hits: dict[str, int] = {}  # entry id -> last hit (ms since the epoch), written by the next pass
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="semrouter-cache-maintenance")

    async def stop(self) -> None:
        """Stop the loop (a pass in progress is cancelled)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def write_hits(self) -> None:
        """Write the hit times not yet written (at close; skipped while the backend is down)."""
        if self.hits and not self._breaker.open:
            try:
                await self._backend.record_hits(self.hits)
            except Exception as e:  # noqa: BLE001 - closing: nothing left to fail open to
                log.warning("cache hit times not written at close", error=f"{type(e).__name__}: {e}")

    async def _loop(self) -> None:
        last_pass = self._clock()
        while True:
            await asyncio.sleep(self._delay())
            due = self._clock() - last_pass >= self.cfg.purge_interval_seconds
            if not (due or self._breaker.open):
                continue
            try:
                await self.run_once()
            except Exception as e:  # keep the loop alive whatever happens
                log.warning("cache maintenance failed", error=f"{type(e).__name__}: {e}")
            last_pass = self._clock()

    def _delay(self) -> float:
        if self._breaker.open:
            return self._breaker.probe_s
        return min(0.5, self.cfg.purge_interval_seconds)

    async def _probe(self) -> bool:
        """Whether the backend answers a cheap check (backends without `probe` always 'answer')."""
        probe = getattr(self._backend, "probe", None)
        if probe is None:
            return True
        try:
            async with asyncio.timeout(max(self._breaker.probe_s, 0.05)):
                return bool(await probe())
        except Exception:  # noqa: BLE001 - a probe that fails in any way means "not answering"
            return False

    async def run_once(self) -> dict[str, int]:
        """One pass (module docstring). Returns what it did: {"reconnected": 1}, {"purged": n, "evicted": m},
        or {} (still down, or a backend error, counted). Raises CacheSchemaError from a reconnect."""
        async with self._lock:
            if self._breaker.open:
                return await self._reconnect()
            try:
                hits, self.hits = self.hits, {}
                await self._backend.record_hits(hits)
                purged = await self._backend.delete_expired(int(self._clock() * 1000))
                evicted = await self._backend.evict(self.cfg.max_entries, self.cfg.eviction)
            except CacheBackendError as e:
                self._counters["maintenance_errors"] += 1
                self._failed("cache maintenance failed", e)
                return {}
            self._counters["purged_expired"] += purged
            self._counters["evicted"] += evicted
            return {"purged": purged, "evicted": evicted}

    async def _reconnect(self) -> dict[str, int]:
        up = await self._probe()
        self._counters["probes" if up else "probes_failed"] += 1
        self._breaker.probed(up, self._clock())
        if not self._breaker.may_reconnect(self._clock()):
            return {}
        try:
            self._counters["reconnects"] += 1
            await self._backend.reconnect()
            self._breaker.success()
            log.info("cache backend reconnected", backend=self._backend.name)
        except CacheSchemaError:
            raise
        except Exception as e:
            self._breaker.reconnect_failed(self._clock())
            log.warning("cache reconnect failed", error=str(e),
                        retry_in_s=round(self._breaker.next_try - self._clock(), 2))
            return {}
        return {"reconnected": 1}  # the purge comes at its usual time; serving again matters now
