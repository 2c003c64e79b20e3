"""Milvus Lite as the durable store, an in-process index for every read.

Milvus Lite runs inside the router process in pure Python: a filtered search or an exact query costs
about 20 ms there, too slow for a cache whose hits should take a few milliseconds end to end. Since only
one process can open a Milvus Lite file, this process is its only writer, so an in-memory copy (the
`memory` backend) can answer every read exactly: entries and vectors are loaded from Milvus Lite at
start-up, and every write goes to Milvus Lite first, then to the copy. A restart keeps the cache.

Used automatically for local (embedded) URIs; a Milvus server or cluster, which other replicas write to
as well, is always searched directly.

Memory is bounded: `cache.milvus.mirror_max_bytes` caps the copy's estimated size (`entry_bytes`:
body, prompt, vector, object overhead). Since the copy answers every read, an entry it drops is gone
from the cache: a store that takes it over the bound evicts (by `cache.eviction`) down to 90% of it,
from the copy and from the file alike, so the file stays the size of the copy. `stats()` gives the
copy's entries and bytes (exported as metrics).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import structlog

from semrouter.cache.backend_memory import MemoryBackend
from semrouter.cache.backend_milvus import MilvusBackend
from semrouter.cache.types import Entry, Scope

log = structlog.get_logger("semrouter.cache")


EVICT_TO = 0.9  # a store over the byte bound evicts down to this fraction of it (one sort per ~10% of churn)


class MirroredBackend:
    name = "milvus"

    def __init__(self, primary: MilvusBackend, dim: int, max_bytes: int | None = None,
                 policy: str = "lru") -> None:
        self._primary = primary
        self._index = MemoryBackend(dim)
        self._max_bytes = max_bytes
        self._policy = policy
        self.evicted = 0  # entries dropped to keep within max_bytes

    async def open(self) -> None:
        await self._primary.open()
        rows = await self._primary.scan()
        for entry, vec in rows:
            await self._index.insert(entry, vec)
        log.info("cache mirror loaded", entries=len(rows), bytes=self._index.bytes_used)
        await self._bound()

    def stats(self) -> dict[str, int]:
        """{"entries", "bytes", "max_bytes" (0 = unbounded), "evicted"} of the in-process copy."""
        return {"entries": len(self._index._entries), "bytes": self._index.bytes_used,  # noqa: SLF001
                "max_bytes": self._max_bytes or 0, "evicted": self.evicted}

    async def _bound(self) -> None:
        if self._max_bytes is None or self._index.bytes_used <= self._max_bytes:
            return
        # no entry-count bound here (max_entries is the maintenance pass's job): only bytes
        gone = await self._index.evict_ids(sys.maxsize, self._policy, max_bytes=int(self._max_bytes * EVICT_TO))
        if gone:
            self.evicted += len(gone)
            await self._primary.delete_ids(gone)
            log.info("cache mirror over its byte bound; evicted", evicted=len(gone), bytes=self._index.bytes_used,
                     max_bytes=self._max_bytes)

    async def probe(self) -> bool:
        return await self._primary.probe()

    async def reconnect(self) -> None:
        await self._primary.reconnect()

    async def close(self) -> None:
        await self._primary.close()

    async def insert(self, entry: Entry, vector: np.ndarray) -> None:
        await self._primary.insert(entry, vector)  # durable first: a failed write is not served
        await self._index.insert(entry, vector)
        await self._bound()

    async def find_exact(self, scope: Scope, prompt_hash: str, now: int) -> Entry | None:
        return await self._index.find_exact(scope, prompt_hash, now)

    async def search(self, scope: Scope, vector: np.ndarray, limit: int, now: int) -> list[tuple[Entry, float]]:
        return await self._index.search(scope, vector, limit, now)

    async def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        return await self._index.vectors(ids)

    async def record_hits(self, hits: dict[str, int]) -> None:
        await self._index.record_hits(hits)
        await self._primary.record_hits(hits)

    async def count(self) -> int:
        return await self._index.count()

    async def get(self, entry_id: str) -> Entry | None:
        return await self._index.get(entry_id)

    async def list(self, tenant: str | None, model: str | None, limit: int) -> list[Entry]:
        return await self._index.list(tenant, model, limit)

    async def delete(self, ids: Sequence[str] | None, tenant: str | None, model: str | None) -> int:
        n = await self._index.delete(ids, tenant, model)
        await self._primary.delete(ids, tenant, model)
        return n

    async def delete_expired(self, now: int) -> int:
        gone = await self._index.delete_expired_ids(now)
        if gone:
            await self._primary.delete_ids(gone)
        return len(gone)

    async def evict(self, max_entries: int, policy: str) -> int:
        gone = await self._index.evict_ids(max_entries, policy)
        if gone:
            await self._primary.delete_ids(gone)
        return len(gone)

    async def clear(self) -> int:
        n = await self._index.clear()
        await self._primary.clear()
        return n
