"""In-process backend: numpy vectors grouped by scope, same semantics as the Milvus backend.

Entries live in the router's memory and are lost on restart. A search only scans the vectors of
the request's scope (tenant, model, context, params), so other scopes can never match. All work is
short numpy calls done under a lock on a worker thread, so the event loop never blocks on a large
scope.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from semrouter.cache.types import Entry, Scope


class _Bucket:
    """Vectors of one scope in a growable matrix; deletion swaps the last row in."""

    def __init__(self, dim: int) -> None:
        self.vectors = np.empty((8, dim), dtype=np.float32)
        self.ids: list[str] = []
        self.pos: dict[str, int] = {}

    def add(self, entry_id: str, vector: np.ndarray) -> None:
        n = len(self.ids)
        if n == self.vectors.shape[0]:
            grown = np.empty((n * 2, self.vectors.shape[1]), dtype=np.float32)
            grown[:n] = self.vectors[:n]
            self.vectors = grown
        self.vectors[n] = vector
        self.ids.append(entry_id)
        self.pos[entry_id] = n

    def remove(self, entry_id: str) -> None:
        i = self.pos.pop(entry_id)
        last = len(self.ids) - 1
        if i != last:
            self.vectors[i] = self.vectors[last]
            self.ids[i] = self.ids[last]
            self.pos[self.ids[i]] = i
        self.ids.pop()

    def vector(self, entry_id: str) -> np.ndarray:
        return self.vectors[self.pos[entry_id]].copy()


ENTRY_OVERHEAD_BYTES = 1200  # Python objects around one entry (Entry, ids, hashes, index maps); measured, see
#                              benchmarks/bench_cache_memory.py


def entry_bytes(entry: Entry, dim: int) -> int:
    """Estimated resident bytes of one entry in this backend: its body and prompt, its vector (with the
    bucket's growth slack, up to 2x) and the Python objects around it."""
    return len(entry.body) + len(entry.prompt.encode("utf-8", "replace")) + 2 * 4 * dim + ENTRY_OVERHEAD_BYTES


class MemoryBackend:
    name = "memory"

    def __init__(self, dim: int) -> None:
        self._dim = dim
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}  # insertion order = fifo order
        self._buckets: dict[Scope, _Bucket] = {}
        self._exact: dict[tuple[Scope, str], str] = {}
        self._bytes = 0  # sum of entry_bytes over the entries held

    @property
    def bytes_used(self) -> int:
        """Estimated bytes the entries take (see `entry_bytes`)."""
        return self._bytes

    async def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.to_thread(self._locked, fn, *args)

    def _locked(self, fn, *args):  # type: ignore[no-untyped-def]
        with self._lock:
            return fn(*args)

    async def open(self) -> None:
        return None

    async def reconnect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def insert(self, entry: Entry, vector: np.ndarray) -> None:
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != self._dim:
            raise ValueError(f"vector has dimension {v.shape[0]}, the cache expects {self._dim}")
        await self._run(self._insert, entry, v)

    def _insert(self, entry: Entry, v: np.ndarray) -> None:
        if entry.id in self._entries:
            self._remove(entry.id)
        self._entries[entry.id] = entry
        self._bytes += entry_bytes(entry, self._dim)
        self._buckets.setdefault(entry.scope, _Bucket(self._dim)).add(entry.id, v)
        self._exact[(entry.scope, entry.prompt_hash)] = entry.id

    def _remove(self, entry_id: str) -> None:
        e = self._entries.pop(entry_id, None)
        if e is None:
            return
        self._bytes -= entry_bytes(e, self._dim)
        bucket = self._buckets[e.scope]
        bucket.remove(entry_id)
        if not bucket.ids:
            del self._buckets[e.scope]
        if self._exact.get((e.scope, e.prompt_hash)) == entry_id:
            del self._exact[(e.scope, e.prompt_hash)]

    async def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of these entries (the learned verifier compares them with the query)."""
        with self._lock:
            out = {}
            for eid in ids:
                e = self._entries.get(eid)
                if e is not None:
                    out[eid] = self._buckets[e.scope].vector(eid)
            return out

    async def find_exact(self, scope: Scope, prompt_hash: str, now: int) -> Entry | None:
        with self._lock:  # a dict lookup: no thread needed
            eid = self._exact.get((scope, prompt_hash))
            e = self._entries.get(eid) if eid else None
        return e if e is not None and e.expires > now else None

    async def search(self, scope: Scope, vector: np.ndarray, limit: int, now: int) -> list[tuple[Entry, float]]:
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        return await self._run(self._search, scope, q, limit, now)

    def _search(self, scope: Scope, q: np.ndarray, limit: int, now: int) -> list[tuple[Entry, float]]:
        bucket = self._buckets.get(scope)
        if bucket is None:
            return []
        n = len(bucket.ids)
        scores = bucket.vectors[:n] @ q
        k = min(limit * 2 + 4, n)  # extra room for expired ones
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top])]
        out = []
        for i in top:
            e = self._entries[bucket.ids[i]]
            if e.expires > now:
                out.append((e, float(scores[i])))
                if len(out) == limit:
                    break
        return out

    async def record_hits(self, hits: dict[str, int]) -> None:
        with self._lock:
            for eid, t in hits.items():
                e = self._entries.get(eid)
                if e is not None:
                    self._entries[eid] = replace(e, hit_count=e.hit_count + 1, last_hit=max(e.last_hit, t))

    async def count(self) -> int:
        return len(self._entries)

    async def get(self, entry_id: str) -> Entry | None:
        return self._entries.get(entry_id)

    async def list(self, tenant: str | None, model: str | None, limit: int) -> list[Entry]:
        with self._lock:
            out = [e for e in self._entries.values()
                   if (tenant is None or e.tenant == tenant) and (model is None or e.model == model)]
        return out[:limit]

    async def delete(self, ids: Sequence[str] | None, tenant: str | None, model: str | None) -> int:
        def run() -> int:
            victims = [e.id for e in self._entries.values()
                       if (ids is None or e.id in ids) and (tenant is None or e.tenant == tenant)
                       and (model is None or e.model == model)]
            for eid in victims:
                self._remove(eid)
            return len(victims)

        return await self._run(run)

    async def delete_expired(self, now: int) -> int:
        return len(await self.delete_expired_ids(now))

    async def delete_expired_ids(self, now: int) -> list[str]:
        def run() -> list[str]:
            victims = [e.id for e in self._entries.values() if e.expires <= now]
            for eid in victims:
                self._remove(eid)
            return victims

        return await self._run(run)

    async def evict(self, max_entries: int, policy: str) -> int:
        return len(await self.evict_ids(max_entries, policy))

    async def evict_ids(self, max_entries: int, policy: str, max_bytes: int | None = None) -> list[str]:
        """Evict down to `max_entries` entries and, when given, `max_bytes` (estimated); say which went."""
        def run() -> list[str]:
            extra = len(self._entries) - max_entries
            over = self._bytes - max_bytes if max_bytes is not None else 0
            if extra <= 0 and over <= 0:
                return []
            entries = list(self._entries.values())
            if policy == "lru":
                entries.sort(key=lambda e: (max(e.last_hit, e.created), e.created))
            victims = []
            for e in entries:
                if extra <= 0 and over <= 0:
                    break
                victims.append(e.id)
                extra -= 1
                over -= entry_bytes(e, self._dim)
            for eid in victims:
                self._remove(eid)
            return victims

        return await self._run(run)

    async def clear(self) -> int:
        def run() -> int:
            n = len(self._entries)
            self._entries.clear()
            self._buckets.clear()
            self._exact.clear()
            self._bytes = 0
            return n

        return await self._run(run)
