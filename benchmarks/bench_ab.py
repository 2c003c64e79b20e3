"""A/B of two (or more) source trees through Envoy in one run: each tree's router code, router config and Envoy
config, side by side on the same demo upstreams, rounds interleaved (the order rotates every round).

Latency numbers on a shared 2-core machine drift by more than the changes they are meant to show, so two builds
are compared only within one run. A tree is a checkout of the repository (e.g. `git archive main | tar -x -C
build/ab/main`, then link `models` and copy `semrouter/_gen` from this checkout): its router runs with that tree
as working directory, so its own `semrouter` package is the one imported.

Modes: `keyword` (signals and cache off, an `auto` request), `signals` (all signals on an `auto` request, cache
off), both at `--concurrency` (default 1) and measured against a direct Envoy (this tree's envoy.yaml without
its ext_proc filters); in `signals` mode each round also times the same signals in-process (this tree's
analyzer built from the shipped config, `analyze(prompt, <what an auto request needs>)` one after another, as
the router awaits it), so "router-added minus in-process" is read within one run; `mixed` (`bench_mixed_load.py`'s mix, shipped config with the Milvus Lite cache, default
concurrency 16).

    .venv/bin/python benchmarks/bench_ab.py --mode signals main=build/ab/main new=. [--rounds 5] [-n 300]
    .venv/bin/python benchmarks/bench_ab.py --mode mixed main=build/ab/main new=. --concurrency 16 -n 600
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import loadgen  # noqa: E402

import bench_mixed_load  # noqa: E402
from bench_routing_overhead import PROMPTS, _cpu_seconds, _direct_envoy, _pct  # noqa: E402
from semrouter.devstack import Stack, free_port  # noqa: E402




def _ext_proc_counters(admin_port: int) -> dict[str, int]:
    """Envoy's ext_proc counters (both filters of a listener share them) and the router cluster's request count."""
    import urllib.request

    url = f"http://127.0.0.1:{admin_port}/stats?filter=(ext_proc\\.|cluster\\.semrouter\\.upstream_rq_total)"
    out: dict[str, int] = {}
    for line in urllib.request.urlopen(url, timeout=5).read().decode().splitlines():
        name, _, value = line.partition(": ")
        if value.strip().isdigit():
            key = name.rsplit(".", 1)[-1]
            out[key] = out.get(key, 0) + int(value)
    return out


def _ports(shared: dict[int, int] | None) -> dict[int, int]:
    p = {k: free_port() for k in (8801, 9901, 50051, 50052, 9190)}
    return p | (shared if shared else {k: free_port() for k in (8001, 8002)})


async def _route_load(port: int, body: bytes, headers: dict[str, str], n: int, conc: int
                      ) -> tuple[list[float], float]:
    for _ in range(10):
        await loadgen.run(port, "/v1/chat/completions", body, headers, 1, 1)
    res = await loadgen.run(port, "/v1/chat/completions", body, headers, n, conc)
    assert set(res.statuses) == {200}, res.statuses
    return res.latencies, res.rps


class InProcess:
    """This tree's signals in this process, on a loop of their own: what an `auto` request awaits in the router."""

    def __init__(self, prompt: str) -> None:
        import yaml

        from semrouter.config import parse_config
        from semrouter.decision.needs import signals_needed
        from semrouter.runtime import Shared, build_runtime

        cfg = yaml.safe_load((ROOT / "config" / "semrouter.yaml").read_text())
        cfg["cache"] = {"enabled": False}
        cfg.get("signals", {})["model_dir"] = str(ROOT / "models")
        self.cfg = parse_config(cfg)
        self.want = signals_needed(self.cfg, "auto", cacheable=False)
        self.prompt = prompt
        self.loop = asyncio.new_event_loop()
        self.rt = self.loop.run_until_complete(build_runtime(self.cfg, Shared()))

    def time_ms(self, n: int) -> list[float]:
        async def go() -> list[float]:
            out = []
            for _ in range(n):
                t = time.perf_counter()
                await self.rt.analyzer.analyze(self.prompt, self.want)
                out.append((time.perf_counter() - t) * 1000)
            return out

        return self.loop.run_until_complete(go())

    def close(self) -> None:
        self.loop.run_until_complete(self.rt.close())
        self.loop.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+", metavar="NAME=TREE")
    ap.add_argument("--mode", choices=["keyword", "signals", "mixed"], default="signals")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-n", type=int, default=300, help="requests per variant per round")
    ap.add_argument("--concurrency", type=int, default=None, help="default 1 (keyword, signals) or 16 (mixed)")
    ap.add_argument("--prompt", default=None, help="the user message of every request (default: the mode's prompt "
                    "of bench_routing_overhead.PROMPTS)")
    a = ap.parse_args()
    conc = a.concurrency or (16 if a.mode == "mixed" else 1)
    variants = [(v.partition("=")[0], Path(v.partition("=")[2]).resolve()) for v in a.variants]
    over: dict[str, Any] = {"logging.level": "warning"}
    if a.mode == "keyword":
        over |= {"signals.enabled": False, "cache.enabled": False}
    elif a.mode == "signals":
        over |= {"cache.enabled": False}
    stats: dict[str, list[tuple[float, ...]]] = {}
    inproc_p50: list[float] = []
    msgs: dict[str, list[dict[str, float]]] = {}  # Envoy's ext_proc counters per request, per round
    prompt = a.prompt or PROMPTS["keyword" if a.mode == "keyword" else "signals"]
    inproc = InProcess(prompt) if a.mode == "signals" else None
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as td:
        tmp = Path(td)
        stacks: dict[str, Stack] = {}
        shared: dict[int, int] | None = None
        try:
            if a.mode != "mixed":  # the direct baseline: Envoy without ext_proc, on the shared upstreams
                ports = _ports(None)
                shared = {8001: ports[8001], 8002: ports[8002]}
                d = Stack(ports=ports, workdir=tmp / "direct", log_dir=tmp / "direct" / "logs", overrides=over,
                              envoy_config=_direct_envoy(ROOT / "envoy" / "envoy.yaml", tmp / "direct.yaml"))
                stacks["direct"] = d.start()
            for name, tree in variants:
                ports = _ports(shared)
                o = over | ({"cache.milvus.uri": str(tmp / f"{name}-cache.db")} if a.mode == "mixed" else {})
                st = Stack(tree=tree, router_config=tree / "config" / "semrouter.yaml",
                               envoy_config=tree / "envoy" / "envoy.yaml", ports=ports, overrides=o,
                               workdir=tmp / name, log_dir=tmp / name / "logs", start_upstreams=shared is None)
                stacks[name] = st.start()
                if shared is None:
                    shared = {8001: ports[8001], 8002: ports[8002]}
            names = list(stacks)
            body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": prompt}]}).encode()
            headers = {"content-type": "application/json", "authorization": "Bearer bench"}
            if a.mode == "mixed":
                for st in stacks.values():  # warm-up, other prompts
                    asyncio.run(bench_mixed_load.drive(st.port(8801), bench_mixed_load.schedule(100, seed=99), 4))
            for rnd in range(a.rounds):
                order = names[rnd % len(names):] + names[:rnd % len(names)]
                if inproc is not None:
                    inproc.time_ms(20)
                    inproc_p50.append(statistics.median(inproc.time_ms(a.n)))
                    print(f"round {rnd + 1} in-process signals p50 {inproc_p50[-1]:.2f} ms", flush=True)
                for name in order:
                    st = stacks[name]
                    pids = [st.procs["router"].pid, st.procs["envoy"].pid]
                    before = [_cpu_seconds(p) for p in pids]
                    counters0 = _ext_proc_counters(st.port(9901))
                    if a.mode == "mixed":
                        r = asyncio.run(bench_mixed_load.drive(st.port(8801),
                                                               bench_mixed_load.schedule(a.n, seed=rnd + 1), conc))
                        bad = sum(v for k, v in r["statuses"].items() if k >= 500 or k == 0)  # type: ignore[union-attr]
                        m = (r["p50"], r["p90"], r["p99"], r["rps"], float(bad))
                    else:
                        lat, rps = asyncio.run(_route_load(st.port(8801), body, headers, a.n, conc))
                        m = (_pct(lat, 0.5), _pct(lat, 0.9), _pct(lat, 0.99), rps, 0.0)
                    cpu = [(_cpu_seconds(p) - b) / a.n * 1000 for p, b in zip(pids, before, strict=True)]
                    counters1 = _ext_proc_counters(st.port(9901))
                    per_req = {k: (counters1.get(k, 0) - counters0.get(k, 0)) / a.n for k in
                               ("streams_started", "stream_msgs_sent", "stream_msgs_received", "upstream_rq_total")}
                    msgs.setdefault(name, []).append(per_req)
                    stats.setdefault(name, []).append((*m, *cpu))  # type: ignore[arg-type]
                    print(f"round {rnd + 1} {name:8s} p50 {m[0]:7.2f}  p90 {m[1]:7.2f}  p99 {m[2]:7.2f} ms  "
                          f"{m[3]:6.0f} req/s  5xx/lost {m[4]:.0f}  router CPU {cpu[0]:.2f}  envoy CPU {cpu[1]:.2f} "
                          "ms/req", flush=True)
        finally:
            for st in reversed(list(stacks.values())):
                st.stop()
            if inproc is not None:
                inproc.close()
    print(f"\nmode={a.mode} concurrency={conc} n={a.n} rounds={a.rounds} (rotating order); machine: "
          f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print("| variant | p50 ms per round | median p50 | median p90 | median p99 | median req/s | "
          + ("router-added p50 (median of per-round differences) | " if a.mode != "mixed" else "5xx/lost | ")
          + "router CPU ms/req | Envoy CPU ms/req |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, ms in stats.items():
        med = [statistics.median(m[i] for m in ms) for i in range(7)]
        if a.mode != "mixed":
            d = stats["direct"]
            extra = "" if name == "direct" else \
                f"+{statistics.median(m[0] - x[0] for m, x in zip(ms, d, strict=True)):.2f}"
        else:
            extra = f"{sum(m[4] for m in ms):.0f}"
        print(f"| {name} | {' / '.join(f'{m[0]:.2f}' for m in ms)} | {med[0]:.2f} | {med[1]:.2f} | {med[2]:.2f} | "
              f"{med[3]:.0f} | {extra} | {med[5]:.2f} | {med[6]:.2f} |")
    print("\nEnvoy's ext_proc counters per request (both filters; the last round's block, warm-up included in n):")
    for name, rows in msgs.items():
        if name != "direct":
            r = rows[-1]
            print(f"  {name}: streams started {r['streams_started']:.2f}, messages sent to the router "
                  f"{r['stream_msgs_sent']:.2f}, received from it {r['stream_msgs_received']:.2f}, router cluster "
                  f"requests {r['upstream_rq_total']:.2f}")
    if inproc_p50:
        print(f"\nin-process signals (what an `auto` request awaits), p50 per round: "
              f"{' / '.join(f'{x:.2f}' for x in inproc_p50)}; median {statistics.median(inproc_p50):.2f} ms")
        for name, ms in stats.items():
            if name != "direct":
                d = stats["direct"]
                gap = statistics.median(m[0] - x[0] - i for m, x, i in zip(ms, d, inproc_p50, strict=True))
                print(f"  {name}: router-added p50 minus in-process signals p50 (median over rounds): +{gap:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
