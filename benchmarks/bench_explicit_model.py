"""Router-added latency of a request that names its model, interleaved A/B in one run.

Three stacks on free loopback ports, each with its own demo upstreams: `direct` (no ext_proc filter),
`needed` (the shipped config: a named model runs only the signals its policies need, decision/needs.py)
and `all` (`routing.explicit_model_signals: all`, every signal as before). Rounds alternate between
the three so machine noise hits them alike; each round sends `-n` requests per stack at concurrency 1.
The request names `llama-3.1-8b`. Two kinds, both measured per round:

- `bypass`: `x-semrouter-cache: bypass`, so the cache is neither read nor written; `needed` runs the
  jailbreak head only (llama-3.1-8b may receive any PII), `all` every head, PII and the layer means;
- `cacheable`: a new tenant (`x-user-id`) per request, so every request is a cache miss that is looked up
  and stored; `needed` runs jailbreak + PII (the cache does not store answers to prompts with PII). These
  go one request per connection (the other kind keeps one connection), so compare within a kind.

Also prints an `auto` row (all signals) for reference.

    .venv/bin/python benchmarks/bench_explicit_model.py [-n 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import loadgen  # noqa: E402

from bench_routing_overhead import _cpu_seconds, _direct_envoy  # noqa: E402
from semrouter.devstack import Stack, free_port  # noqa: E402

PROMPT = "Can you explain how photosynthesis turns light into chemical energy in plants?"
HEADERS = {"content-type": "application/json", "x-user-id": "bench", "x-semrouter-cache": "bypass"}


def body(model: str) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": PROMPT}]}).encode()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=300, help="requests per stack per round")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    variants = {"direct": {}, "needed": {}, "all": {"routing.explicit_model_signals": "all"}}
    stacks: dict[str, Stack] = {}
    p50: dict[tuple[str, str], list[float]] = {(kind, k): [] for kind in ("bypass", "cacheable")
                                               for k in [*variants, "auto"]}
    cpu: dict[tuple[str, str], list[float]] = {k: [] for k in p50}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        try:
            for name, over in variants.items():
                ports = {p: free_port() for p in (8801, 9901, 50051, 50052, 8001, 8002, 9190)}
                envoy = _direct_envoy(ROOT / "envoy" / "envoy.yaml", tmp / "direct.yaml") if name == "direct" \
                    else ROOT / "envoy" / "envoy.yaml"
                stacks[name] = Stack(ports=ports, overrides={"logging.level": "warning",
                                                             "cache.milvus.uri": str(tmp / name / "c.db"), **over},
                                     workdir=tmp / name, log_dir=tmp / name / "logs", envoy_config=envoy).start()

            async def measure(name: str, model: str, n: int, kind: str = "bypass") -> tuple[float, float]:
                st = stacks[name]
                pid = st.procs["router"].pid if name != "direct" else None
                before = _cpu_seconds(pid) if pid else 0.0
                lat: list[float] = []
                if kind == "bypass":
                    res = await loadgen.run(st.port(8801), "/v1/chat/completions", body(model), HEADERS, n, 1)
                    assert set(res.statuses) == {200}, (name, res.statuses)
                    lat = res.latencies
                else:
                    for _ in range(n):
                        h = {**HEADERS, "x-user-id": f"bench-{uuid.uuid4().hex[:12]}"}
                        del h["x-semrouter-cache"]
                        res = await loadgen.run(st.port(8801), "/v1/chat/completions", body(model), h, 1, 1)
                        assert set(res.statuses) == {200} and not res.header_true, (name, res.statuses)
                        lat += res.latencies
                used = (_cpu_seconds(pid) - before) / n * 1000 if pid else 0.0
                return statistics.median(lat) * 1000, used

            async def rounds() -> None:
                for name in stacks:  # warm-up
                    await measure(name, "llama-3.1-8b", 50)
                await measure("needed", "auto", 50)
                for r in range(a.rounds):
                    order = list(stacks) if r % 2 == 0 else list(reversed(stacks))
                    for kind in ("bypass", "cacheable"):
                        for name in order:
                            m, c = await measure(name, "llama-3.1-8b", a.n, kind)
                            p50[kind, name].append(m)
                            cpu[kind, name].append(c)
                        m, c = await measure("needed", "auto", a.n, kind)
                        p50[kind, "auto"].append(m)
                        cpu[kind, "auto"].append(c)

            asyncio.run(rounds())
        finally:
            for st in stacks.values():
                st.stop()
    print(f"\nnamed model (llama-3.1-8b, cache bypass), concurrency 1, {a.rounds} interleaved rounds x {a.n} requests; "
          f"{os.cpu_count()} cores")
    print("| kind | variant | p50 ms per round | median p50 ms | router-added p50 ms | router CPU ms/req |")
    print("|---|---|---|---:|---:|---:|")
    for kind, name in p50:
        base = statistics.median(p50[kind, "direct"])
        label = {"needed": "named, needed signals (shipped)", "all": "named, all signals (before)",
                 "auto": "auto (all signals), reference", "direct": "direct (no router)"}[name]
        med = statistics.median(p50[kind, name])
        added = f"+{med - base:.2f}" if name != "direct" else ""
        cpus = f"{statistics.median(cpu[kind, name]):.2f}" if name != "direct" else ""
        print(f"| {kind} | {label} | {' / '.join(f'{x:.2f}' for x in p50[kind, name])} | {med:.2f} | {added} | "
              f"{cpus} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
