"""The in-process copy of an embedded Milvus Lite cache stays within `mirror_max_bytes`: a store over it
evicts from the copy and the file alike, and the copy's entries and bytes are reported."""

from __future__ import annotations

from pathlib import Path

from semrouter.cache import CacheConfig, SemanticCache
from semrouter.cache.backend_memory import MemoryBackend, entry_bytes
from semrouter.cache.testing import HashEmbedder, completion, user_request
from semrouter.cache.types import Entry

DIM = 32
MIB = 1024 * 1024


req = user_request


def cfg(uri: str, max_bytes: int) -> CacheConfig:
    return CacheConfig.model_validate({"enabled": True, "dimension": DIM, "verifier": "off", "eviction": "fifo",
                                       "lookup_timeout_ms": 3000,
                                       "milvus": {"uri": uri, "mirror_max_bytes": max_bytes}})


async def fill(cache: SemanticCache, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        key = cache.key_for(req(f"question number {i} about the weather"), {"x-user-id": "t"})
        cache.store_in_background(key, None, 200, "application/json", completion(f"answer {i} " + "x" * 20_000),
                                  False)
        await cache.flush()


async def test_mirror_stays_within_its_byte_bound_and_the_file_follows(tmp_path: Path) -> None:
    uri = str(tmp_path / "cache.db")
    cache = await SemanticCache.create(cfg(uri, MIB), HashEmbedder(DIM), maintenance=False)
    try:
        await fill(cache, 80)  # ~80 x 21 KB = 1.7 MB of entries into a 1 MiB copy
        state, mirror = cache.state(), (await cache.stats())["mirror"]
        assert 0 < state["mirror_bytes"] <= MIB and mirror["bytes"] == state["mirror_bytes"]
        assert mirror["evicted"] > 0 and state["mirror_entries"] == 80 - mirror["evicted"]
        assert await cache.backend._primary.count() == state["mirror_entries"]  # noqa: SLF001 - the file too
        # fifo: the newest is served, the oldest is gone
        newest = cache.key_for(req("question number 79 about the weather"), {"x-user-id": "t"})
        oldest = cache.key_for(req("question number 0 about the weather"), {"x-user-id": "t"})
        assert await cache.lookup(newest, None, stage="exact") is not None
        assert await cache.lookup(oldest, None, stage="exact") is None
    finally:
        await cache.close()
    again = await SemanticCache.create(cfg(uri, MIB), HashEmbedder(DIM), maintenance=False)  # restart
    try:
        assert again.state()["mirror_bytes"] <= MIB
    finally:
        await again.close()


async def test_byte_accounting_returns_to_zero() -> None:
    mem = MemoryBackend(DIM)
    import numpy as np

    e = Entry(id="a", tenant="t", model="m", context_hash="c", params_hash="p", prompt_hash="h", prompt="héllo",
              category="", body=b"x" * 1000, created=0, expires=10)
    await mem.insert(e, np.ones(DIM, np.float32))
    assert mem.bytes_used == entry_bytes(e, DIM) > 1000 + len("héllo".encode())
    await mem.insert(e, np.ones(DIM, np.float32))  # same id again: replaced, not counted twice
    assert mem.bytes_used == entry_bytes(e, DIM)
    assert await mem.evict_ids(10, "fifo", max_bytes=0) == ["a"] and mem.bytes_used == 0
