"""Cache backends: insert throughput, lookup latency (p50/p99) and process memory vs entries.

Random L2-normalised 384-d vectors, all entries in ONE scope (the worst case: the scope filter
keeps every vector). A lookup is the full `SemanticCache.lookup` (exact query + vector search +
threshold), with the embedding passed in so only the cache is timed. Bulk filling uses the
backend's own batch path; "insert/s" is `store` one entry at a time through the backend API.

    .venv/bin/python benchmarks/bench_cache_backends.py [--sizes 10000,100000] [--backends memory,milvus]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from semrouter.cache import CacheConfig, SemanticCache  # noqa: E402
from semrouter.cache.keys import prompt_hash  # noqa: E402
from semrouter.cache.types import CacheKey, Entry  # noqa: E402

DIM = 384
BODY = b'{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"' + \
    b"x" * 600 + b'"},"finish_reason":"stop"}]}'


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((n, DIM), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def entry(i: int, now: int) -> Entry:
    return Entry(id=uuid.uuid4().hex, tenant="t", model="m", context_hash="c" * 64, params_hash="p" * 64,
                 prompt_hash=prompt_hash(f"prompt {i}"), prompt=f"prompt number {i}", category="", body=BODY,
                 created=now + i, expires=now + 10**9)


async def fill(cache: SemanticCache, n: int, rng: np.random.Generator) -> float:
    b = cache.backend
    now = int(time.time() * 1000)
    t = time.perf_counter()
    for start in range(0, n, 5000):
        k = min(5000, n - start)
        vecs = vectors(k, rng)
        ents = [entry(start + i, now) for i in range(k)]
        index = b if b.name == "memory" else getattr(b, "_index", None)  # the mirror's in-process copy
        primary = getattr(b, "_primary", b) if b.name != "memory" else None
        if primary is not None:
            rows = [primary._row(e, v) for e, v in zip(ents, vecs, strict=True)]  # noqa: SLF001
            for i in range(0, k, 1000):
                await primary._call(lambda c, r=rows[i:i + 1000]: c.insert(primary._col, r, timeout=120))  # noqa: SLF001
        if index is not None:
            for e, v in zip(ents, vecs, strict=True):
                index._insert(e, v)  # noqa: SLF001 - bulk fill for the benchmark
    return n / (time.perf_counter() - t)


async def bench(kind: str, n: int, tmp: str) -> dict[str, float]:
    rng = np.random.default_rng(n)
    gc.collect()
    base = rss_mb()
    backend = "memory" if kind == "memory" else "milvus"
    cfg = CacheConfig.model_validate({"enabled": True, "backend": backend, "lookup_timeout_ms": 60_000,
                                      "max_entries": 10**7, "verify": False,
                                      "milvus": {"uri": f"{tmp}/{kind}-{n}/cache.db", "call_timeout_seconds": 600,
                                                 "mirror_local": kind == "milvus"}})
    cache = await SemanticCache.create(cfg, None, maintenance=False)
    try:
        bulk = await fill(cache, n, rng)
        if kind != "memory":  # flush + build the index before timing searches
            primary = getattr(cache.backend, "_primary", cache.backend)
            await primary._call(lambda c: c.flush(cfg.milvus.collection, timeout=1800))  # noqa: SLF001
        grown = rss_mb() - base
        now = int(time.time() * 1000)
        t = time.perf_counter()
        singles = 200
        for i, v in enumerate(vectors(singles, rng)):
            await cache.backend.insert(entry(n + i, now), v)
        single = singles / (time.perf_counter() - t)
        key = CacheKey("t", "m", "c" * 64, "p" * 64, "a query", prompt_hash("a query"))
        qs = vectors(300, rng)
        for q in qs[:20]:
            await cache.lookup(key, None, embedding=q)  # warm-up
        lat = []
        for q in qs[20:]:
            t = time.perf_counter()
            await cache.lookup(key, None, embedding=q)
            lat.append((time.perf_counter() - t) * 1000)
        return {"bulk": bulk, "single": single, "p50": float(np.percentile(lat, 50)),
                "p99": float(np.percentile(lat, 99)), "rss": grown}
    finally:
        await cache.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--backends", default="memory,milvus,milvus-direct")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()}-core, dim {DIM}, one scope; milvus = Milvus Lite embedded with the in-process "
          "mirror (the default); milvus-direct = Milvus Lite searched directly (HNSW M=16, ef=64)")
    print(f"{'backend':>8} {'entries':>9} {'bulk ins/s':>11} {'single ins/s':>12} {'lookup p50 ms':>13} "
          f"{'p99 ms':>8} {'RSS +MB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.backends.split(","):
            for n in map(int, args.sizes.split(",")):
                r = await bench(kind, n, tmp)
                print(f"{kind:>8} {n:9d} {r['bulk']:11.0f} {r['single']:12.0f} {r['p50']:13.2f} {r['p99']:8.2f} "
                      f"{r['rss']:8.0f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
