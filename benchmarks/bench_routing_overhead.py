"""Router-added latency through Envoy: Envoy→upstream direct vs Envoy→router→upstream.

Starts the shipped stack on free loopback ports twice over the same demo upstreams: once with the
ext_proc filter removed from envoy.yaml (direct), once as shipped. Prints p50/p99 latency and
requests/s at each concurrency, and the difference (what the router adds).

  .venv/bin/python benchmarks/bench_routing_overhead.py --mode keyword          # keyword rules only
  .venv/bin/python benchmarks/bench_routing_overhead.py --mode signals          # + ONNX signals (auto)
  .venv/bin/python benchmarks/bench_routing_overhead.py --mode signals \
      --set signals.intra_op_threads=2 --set signals.spin_wait=run               # any config override
  .venv/bin/python benchmarks/bench_routing_overhead.py --mode cache-hit --cache-backend memory
  .venv/bin/python benchmarks/bench_routing_overhead.py --mode cache-hit --cache-backend milvus-lite
  unshare --net sh -c 'ip link set lo up && .venv/bin/python benchmarks/bench_routing_overhead.py \
      --mode cache-hit --cache-backend milvus-server'   # a real Milvus 2.3 server (binds all interfaces)

In cache-hit mode the "router" rows are answers served from the semantic cache (the share of hits is
printed); the "direct" rows are the upstream through Envoy, for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import loadgen

from semrouter.devstack import Stack, free_port

PROMPTS = {
    "keyword": "What is the derivative of x^3 + 2x?",
    "signals": "Can you explain how photosynthesis turns light into chemical energy in plants?",
    "cache-hit": "What is the capital city of Australia?",
    # five sentences: the safety head's segment views (one extra encoder run) apply from two sentences on
    "signals-long": "I keep a small vegetable garden behind the house. This year the tomatoes split before they "
                    "ripened. The weather was dry for weeks and then it rained for three days. I water them in the "
                    "evening. What causes the splitting and how can I prevent it next summer?",
}


def _direct_envoy(src: Path, dst: Path) -> Path:
    import yaml

    cfg = yaml.safe_load(src.read_text())
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    # both ext_proc filters: the decision one and the observer (otherwise "direct" would still stream every
    # answer to the router, and its CPU would slow the baseline; numbers before the third session did)
    hcm["http_filters"] = [f for f in hcm["http_filters"] if not f["name"].startswith("envoy.filters.http.ext_proc")]
    dst.write_text(yaml.safe_dump(cfg))
    return dst


async def _load(port: int, body: bytes, headers: dict[str, str], n: int, conc: int, client: str = "lean"
                ) -> tuple[list[float], float, float]:
    if client == "lean":
        for _ in range(20):  # warm-up (and, in cache-hit mode, the entry gets stored)
            await loadgen.run(port, "/v1/chat/completions", body, headers, 1, 1)
            await asyncio.sleep(0.05)
        res = await loadgen.run(port, "/v1/chat/completions", body, headers, n, conc)
        assert set(res.statuses) == {200}, res.statuses
        return res.latencies, res.rps, res.header_true / n
    lat: list[float] = []
    hits = 0
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    conn = aiohttp.TCPConnector(limit=conc)
    async with aiohttp.ClientSession(connector=conn) as s:
        for _ in range(20):  # warm-up (and, in cache-hit mode, the entry gets stored)
            async with s.post(url, data=body, headers=headers) as r:
                await r.read()
            await asyncio.sleep(0.05)
        sem = asyncio.Semaphore(conc)

        async def one() -> None:
            async with sem:
                t = time.perf_counter()
                async with s.post(url, data=body, headers=headers) as r:
                    await r.read()
                    assert r.status == 200, r.status
                    hit = r.headers.get("x-vsr-cache-hit") == "true"
                lat.append(time.perf_counter() - t)
                nonlocal hits
                hits += hit

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return lat, n / (time.perf_counter() - t0), hits / n


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(mode: str, n: int, concurrencies: list[int], overrides: dict, client: str = "lean") -> list[tuple]:
    rows = []
    ports = {p: free_port() for p in (8801, 9901, 50051, 50052, 8001, 8002, 9190)}
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": PROMPTS[mode]}]}).encode()
    headers = {"content-type": "application/json", "authorization": "Bearer bench"}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        direct_cfg = _direct_envoy(ROOT / "envoy" / "envoy.yaml", tmp / "direct.yaml")
        for label, envoy_cfg in (("direct", direct_cfg), ("router", ROOT / "envoy" / "envoy.yaml")):
            stack = Stack(ports=ports, overrides=overrides, workdir=tmp / label, log_dir=tmp / label / "logs",
                          envoy_config=envoy_cfg)
            with stack:
                pids = {"router": stack.procs["router"].pid if "router" in stack.procs else None,
                        "envoy": stack.procs["envoy"].pid}
                for c in concurrencies:
                    before = {k: _cpu_seconds(p) for k, p in pids.items() if p}
                    lat, rps, hit = asyncio.run(_load(ports[8801], body, headers, n, c, client))
                    # CPU per request (includes the 20 warm-up requests, <1% of n)
                    cpu = {k: (_cpu_seconds(p) - before[k]) / n * 1000 for k, p in pids.items() if p}
                    rows.append((label, c, _pct(lat, 0.5), _pct(lat, 0.99), statistics.mean(lat) * 1000, rps, hit,
                                 cpu.get("router", 0.0), cpu["envoy"]))
                if label == "router" and mode == "cache-hit":
                    from semrouter.admin.client import call

                    stats = call(f"127.0.0.1:{ports[50052]}", "cache_stats")
                    print("cache counters:", stats.get("details", {}).get("counters"))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=list(PROMPTS), default="keyword")
    ap.add_argument("-n", type=int, default=2000, help="requests per concurrency level")
    ap.add_argument("--concurrency", default="1,16")
    ap.add_argument("--cache-backend", choices=["memory", "milvus-lite", "milvus-server"], default="milvus-lite")
    ap.add_argument("--client", choices=["lean", "aiohttp"], default="lean",
                    help="load generator: benchmarks/loadgen.py (default; little CPU of its own) or aiohttp "
                         "(what the numbers before the third session used)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for the router, e.g. signals.intra_op_threads=2 (repeatable)")
    a = ap.parse_args()
    overrides: dict = {"logging.level": "warning"}
    import yaml

    for kv in a.set:
        key, _, value = kv.partition("=")
        overrides[key] = yaml.safe_load(value)
    server = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    if a.mode == "keyword":
        overrides |= {"signals.enabled": False, "cache.enabled": False}
    elif a.mode.startswith("signals"):
        overrides |= {"cache.enabled": False}
    elif a.cache_backend == "memory":
        overrides |= {"cache.backend": "memory"}
    elif a.cache_backend == "milvus-lite":
        overrides |= {"cache.milvus.uri": str(tmp / "cache.db")}
    else:
        from milvus import (
            default_server,  # PyPI milvus==2.3.5, a real standalone server
        )

        default_server.set_base_dir(str(tmp / "milvus-server"))
        default_server.listen_port = free_port()
        default_server.show_startup_banner = False
        default_server.start()
        server = default_server
        overrides |= {"cache.milvus.uri": f"http://127.0.0.1:{default_server.listen_port}"}
    try:
        rows = run(a.mode, a.n, [int(c) for c in a.concurrency.split(",")], overrides, a.client)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    backend = f" cache={a.cache_backend}" if a.mode == "cache-hit" else ""
    print(f"\nmode={a.mode}{backend}  client={a.client}  n={a.n}  machine: {platform.machine()}, {platform.system()}, "
          f"{os.cpu_count()} cores, python {platform.python_version()}")
    print(f"{'path':8s} {'conc':>4s} {'p50 ms':>8s} {'p99 ms':>8s} {'mean ms':>8s} {'req/s':>8s} {'hits':>5s} "
          f"{'router CPU ms/req':>18s} {'envoy CPU ms/req':>17s}")
    for r in rows:
        print(f"{r[0]:8s} {r[1]:4d} {r[2]:8.2f} {r[3]:8.2f} {r[4]:8.2f} {r[5]:8.0f} {r[6]:5.0%} {r[7]:18.3f} {r[8]:17.3f}")
    by = {(r[0], r[1]): r for r in rows}
    print("\nrouter-added latency (router minus direct):")
    for c in sorted({r[1] for r in rows}):
        d, r = by[("direct", c)], by[("router", c)]
        print(f"  concurrency {c:3d}: p50 +{r[2] - d[2]:.2f} ms, p99 +{r[3] - d[3]:.2f} ms, "
              f"throughput {r[5] / d[5] * 100:.0f}% of direct")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
