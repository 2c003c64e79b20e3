"""How fast the semantic cache serves again after its Milvus server returns.

A `milvus-lite server` on a loopback port holds one entry; the server is SIGKILLed, lookups go on
(failing open, the breaker opens, the cache probes every 0.25 s), then the server is started again on the
same port and data directory. Prints, per round, the seconds from the port answering to the first hit, and
the cache's probe/reconnect counters. Uses `SemanticCache` directly (hash embedder), so only recovery is timed.

    .venv/bin/python benchmarks/bench_cache_recovery.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from semrouter.cache import CacheConfig, SemanticCache  # noqa: E402
from semrouter.cache.testing import HashEmbedder, completion  # noqa: E402
from semrouter.devstack import free_port  # noqa: E402
from semrouter.request.parse import ChatRequest  # noqa: E402

DIM = 32


def start(port: int, data: Path) -> tuple[subprocess.Popen[bytes], float]:
    p = subprocess.Popen([str(Path(sys.executable).parent / "milvus-lite"), "server", "--data-dir", str(data),
                          "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    while True:
        if p.poll() is not None:
            raise RuntimeError("milvus-lite server exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return p, time.monotonic()
        except OSError:
            time.sleep(0.01)


def kill(p: subprocess.Popen[bytes]) -> None:
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=10)


async def round_(tmp: Path) -> tuple[float | None, dict[str, int]]:
    port, data = free_port(), tmp / f"lite-{time.monotonic_ns()}"
    proc, _ = start(port, data)
    cfg = CacheConfig.model_validate({"enabled": True, "dimension": DIM, "lookup_timeout_ms": 200,
                                      "milvus": {"uri": f"http://127.0.0.1:{port}", "call_timeout_seconds": 2}})
    cache = await SemanticCache.create(cfg, HashEmbedder(DIM))
    try:
        msgs = ({"role": "user", "content": "What is the boiling point of water?"},)
        key = cache.key_for(ChatRequest(body={"model": "m", "messages": list(msgs)}, model="m", messages=msgs,
                                        stream=False), {"x-user-id": "t"})
        cache.store_in_background(key, None, 200, "application/json", completion("100 C"), False)
        await cache.flush()
        assert await cache.lookup(key, None) is not None
        kill(proc)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3:  # traffic while it is down
            await cache.lookup(key, None)
            await asyncio.sleep(0.05)
        proc, answering = start(port, data)
        back = None
        while time.monotonic() - answering < 30:
            if await cache.lookup(key, None) is not None:
                back = time.monotonic() - answering
                break
            await asyncio.sleep(0.02)
        return back, dict((await cache.stats())["counters"])
    finally:
        await cache.close()
        kill(proc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-recovery-") as td:
        for _ in range(a.rounds):
            rows.append(asyncio.run(round_(Path(td))))
    print("\n| round | first hit after the server answered, s | probes failed / answered | reconnects |")
    print("|---:|---:|---:|---:|")
    for i, (back, c) in enumerate(rows, 1):
        print(f"| {i} | {'none in 30 s' if back is None else f'{back:.2f}'} | "
              f"{c.get('probes_failed', 0)} / {c.get('probes', 0)} | {c.get('reconnects', 0)} |")
    print(json.dumps({"note": "lookups every 50 ms while down; 20 ms after the restart"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
