"""Router-added latency per client API at concurrency 1: chat completions, Responses, Anthropic Messages.

Starts two stacks side by side on free loopback ports (same demo upstreams): Envoy without the ext_proc
filters (direct) and the shipped stack (router). Requests alternate in rounds (API order rotates each round,
direct and router back to back), so machine noise lands on all six series alike. Each request is `model:
auto` with the same question in the API's own shape; the cache is off, so every request is decided and
forwarded. Prints p50/p90 per API and target, and router minus direct.

  .venv/bin/python benchmarks/bench_apis.py                    # keyword rules only (signals off)
  .venv/bin/python benchmarks/bench_apis.py --mode signals     # + ONNX signals (category, jailbreak, PII, ...)
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import loadgen  # noqa: E402
from bench_routing_overhead import _direct_envoy, _pct  # noqa: E402

from semrouter.devstack import Stack, free_port  # noqa: E402

QUESTION = "What is the derivative of x^3 + 2x?"
BODIES = {
    "/v1/chat/completions": {"model": "auto", "messages": [{"role": "user", "content": QUESTION}]},
    "/v1/responses": {"model": "auto", "input": QUESTION},
    "/v1/messages": {"model": "auto", "max_tokens": 8000, "messages": [{"role": "user", "content": QUESTION}]},
}
HEADERS = {"content-type": "application/json", "x-user-id": "bench", "x-api-key": "sk-ant-bench",
           "anthropic-version": "2023-06-01"}


async def _measure(ports: dict[str, int], rounds: int, per_round: int) -> dict[tuple[str, str], list[float]]:
    lat: dict[tuple[str, str], list[float]] = {(p, t): [] for p in BODIES for t in ports}
    paths = list(BODIES)
    for path in paths:  # the router stack really decides (a router that failed to start would fail open)
        c = http.client.HTTPConnection("127.0.0.1", ports["router"], timeout=30)
        c.request("POST", path, json.dumps(BODIES[path]), HEADERS)
        r = c.getresponse()
        r.read()
        assert r.status == 200 and r.getheader("x-semrouter-reason"), (path, r.status, r.getheaders())
        c.close()
    for path in paths:  # warm-up
        for port in ports.values():
            res = await loadgen.run(port, path, json.dumps(BODIES[path]).encode(), HEADERS, 30, 1)
            assert set(res.statuses) == {200}, (path, res.statuses)
    for r in range(rounds):
        order = paths[r % len(paths):] + paths[:r % len(paths)]
        for path in order:
            for target, port in ports.items():
                res = await loadgen.run(port, path, json.dumps(BODIES[path]).encode(), HEADERS, per_round, 1)
                assert set(res.statuses) == {200}, (path, target, res.statuses)
                lat[(path, target)] += res.latencies
    return lat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["keyword", "signals"], default="keyword")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--per-round", type=int, default=50, help="requests per API and target in each round")
    a = ap.parse_args()
    overrides: dict = {"logging.level": "warning", "cache.enabled": False}
    if a.mode == "keyword":
        overrides["signals.enabled"] = False
    shipped = (8801, 9901, 50051, 50052, 8001, 8002, 9190)  # every port the shipped configs listen on
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        stacks = {}
        for label, envoy_cfg in (("direct", _direct_envoy(ROOT / "envoy" / "envoy.yaml", tmp / "direct.yaml")),
                                 ("router", ROOT / "envoy" / "envoy.yaml")):
            stacks[label] = Stack(ports={p: free_port() for p in shipped}, overrides=overrides,
                                  workdir=tmp / label, log_dir=tmp / label / "logs", envoy_config=envoy_cfg)
        try:
            for s in stacks.values():
                s.start()
            lat = asyncio.run(_measure({k: s.port(8801) for k, s in stacks.items()}, a.rounds, a.per_round))
        finally:
            for s in stacks.values():
                s.stop()
    n = a.rounds * a.per_round
    print(f"\nmode={a.mode}  concurrency=1  n={n} per API and target (interleaved)  machine: {platform.machine()}, "
          f"{os.cpu_count()} cores, python {platform.python_version()}")
    print(f"{'API':22s} {'direct p50':>10s} {'router p50':>10s} {'added p50':>10s} {'direct p90':>10s} "
          f"{'router p90':>10s}")
    for path in BODIES:
        d, r = lat[(path, "direct")], lat[(path, "router")]
        print(f"{path:22s} {_pct(d, 0.5):10.2f} {_pct(r, 0.5):10.2f} {_pct(r, 0.5) - _pct(d, 0.5):+10.2f} "
              f"{_pct(d, 0.9):10.2f} {_pct(r, 0.9):10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
