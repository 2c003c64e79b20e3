"""Memory of the embedded cache (Milvus Lite file + in-process copy) under a store soak, bounded vs not.

Stores synthetic answers (~3 KB, like a short chat completion) one at a time through
`SemanticCache.store_in_background` (the path the router uses), with random L2-normalised 384-d
vectors, into Milvus Lite embedded (in this process) with the mirror on. Every `--every` stores it prints
the process RSS, the copy's entries and estimated bytes, and RSS growth per stored entry since the
previous row. With `--max-mib` the copy (and so the file) is bounded; RSS should go flat once the bound
is reached. A first table calibrates `ENTRY_OVERHEAD_BYTES` against tracemalloc on the copy alone.

    .venv/bin/python benchmarks/bench_cache_memory.py [--entries 20000] [--every 2000] [--max-mib 16]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from semrouter.cache import CacheConfig, SemanticCache  # noqa: E402
from semrouter.cache.backend_memory import MemoryBackend, entry_bytes  # noqa: E402
from semrouter.cache.keys import prompt_hash  # noqa: E402
from semrouter.cache.testing import completion  # noqa: E402
from semrouter.cache.types import CacheKey, Entry  # noqa: E402

DIM = 384
ANSWER = "word " * 600  # ~3 KB of content


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def arrow_mb() -> float:
    """Bytes Arrow has allocated now (Milvus Lite keeps its memtable and segments as Arrow data)."""
    import pyarrow as pa

    return pa.total_allocated_bytes() / 2**20


def unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def calibrate(n: int = 5000) -> None:
    """Estimated vs traced bytes per entry of the in-process copy (the MemoryBackend the mirror uses)."""
    rng = np.random.default_rng(0)
    body = completion(ANSWER)
    mem = MemoryBackend(DIM)
    entries = [Entry(id=uuid.uuid4().hex, tenant=f"tenant-{i % 50}", model="llama-3.1-8b", context_hash="c" * 64,
                     params_hash="p" * 64, prompt_hash=prompt_hash(f"p{i}"), prompt=f"synthetic question {i} " * 3,
                     category="other", body=bytes(body), created=i, expires=10**13) for i in range(n)]
    vecs = [unit(rng) for _ in range(n)]
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for e, v in zip(entries, vecs, strict=True):
        mem._insert(e, v)  # noqa: SLF001 - the locked body of insert(), without a thread hop per entry
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    # the entries' own bodies and prompts were allocated before tracing started: add them back
    own = sum(len(e.body) + len(e.prompt) + 33 for e in entries) + sum(sys.getsizeof(s) for e in entries
                                                                       for s in (e.id, e.prompt_hash))
    print(f"| copy of {n} entries | traced {traced / n:,.0f} B + entries' own strings {own / n:,.0f} B "
          f"= {(traced + own) / n:,.0f} B/entry | estimate (entry_bytes) {mem.bytes_used / n:,.0f} B/entry |")


def trim() -> None:
    """Hand freed heap back to the OS (glibc malloc_trim), so RSS shows live memory, not allocator slack."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


async def soak(entries: int, every: int, max_mib: int | None, trimmed: bool = False) -> None:
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory(prefix="bench-cache-mem-") as tmp:
        cfg = CacheConfig.model_validate({
            "enabled": True, "dimension": DIM, "verifier": "off", "eviction": "lru",
            "max_entries": 10**7, "purge_interval_seconds": 3600,
            "milvus": {"uri": str(Path(tmp) / "cache.db"),
                       "mirror_max_bytes": (max_mib or 1 << 20) * 1024 * 1024}})
        cache = await SemanticCache.create(cfg, embed=None, maintenance=False)
        body = completion(ANSWER)
        label = (f"bound {max_mib} MiB" if max_mib else "unbounded") + (", malloc_trim before each row" if trimmed
                                                                         else "")
        print(f"\n{label}: RSS of this process (Milvus Lite runs in it) while storing {entries} entries\n")
        print("| stored | RSS MiB | copy entries | copy MiB (est.) | Arrow MiB (Milvus Lite) | "
              "RSS KB per store since last row | stores/s |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        gc.collect()
        last_rss, last_t = rss_mb(), time.perf_counter()
        print(f"| 0 | {last_rss:.0f} | 0 | 0.0 | {arrow_mb():.1f} | | |")
        for i in range(1, entries + 1):
            text = f"synthetic question {i} about topic {i % 97}"
            key = CacheKey(tenant=f"tenant-{i % 50}", model="llama-3.1-8b", context_hash="c" * 64,
                           params_hash="p" * 64, prompt_hash=prompt_hash(text), prompt=text)
            cache.store_in_background(key, "other", 200, "application/json", body, False, unit(rng))
            if i % 64 == 0:
                await cache.flush()
            if i % every == 0:
                await cache.flush()
                gc.collect()
                if trimmed:
                    trim()
                st = cache.state()
                now_rss, now_t = rss_mb(), time.perf_counter()
                print(f"| {i} | {now_rss:.0f} | {int(st['mirror_entries'])} | {st['mirror_bytes'] / 2**20:.1f} | "
                      f"{arrow_mb():.1f} | {(now_rss - last_rss) * 1024 / every:.1f} | {every / (now_t - last_t):.0f} |",
                      flush=True)
                last_rss, last_t = now_rss, now_t
        print(f"\ncounters: {(await cache.stats())['counters']}")
        await cache.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=20000)
    ap.add_argument("--every", type=int, default=2000)
    ap.add_argument("--max-mib", type=int, default=16, help="mirror bound; 0 = unbounded")
    ap.add_argument("--skip-calibration", action="store_true")
    ap.add_argument("--trim", action="store_true", help="malloc_trim before each RSS reading (live memory only)")
    a = ap.parse_args()
    if not a.skip_calibration:
        calibrate()
    asyncio.run(soak(a.entries, a.every, a.max_mib or None, a.trim))


if __name__ == "__main__":
    main()
