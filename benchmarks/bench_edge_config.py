"""What the trust-boundary settings of envoy.yaml cost: the shipped config against the same config without them.

One router and one pair of demo upstreams; two Envoys side by side on free loopback ports: the shipped
envoy/envoy.yaml, and a copy without the hardening (no early header mutation, no path normalisation, no
local-reply mapping, no join-nonce removal from answers). Rounds alternate between the two (A/B interleaved on the
same machine, so drift and neighbours' load hit both alike); each round drives keyword-routed chat requests
(`--request routed`) or requests the router answers itself with an error (`--request local-reply`: an unknown
model, a 404 ImmediateResponse that goes through the local-reply mappers as a cache hit does; not a 400, after
which Envoy closes the connection) at each concurrency.
Prints p50/p99 latency, requests/s and Envoy CPU per request for each, per round and as the median over rounds.

  .venv/bin/python benchmarks/bench_edge_config.py --rounds 5 -n 1000 --concurrency 1,16
  .venv/bin/python benchmarks/bench_edge_config.py --request local-reply
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchmarks.machine import describe  # noqa: E402
import loadgen  # noqa: E402
from bench_routing_overhead import _cpu_seconds, _pct  # noqa: E402

from semrouter.devstack import (  # noqa: E402
    Stack, _dying_with_parent, _wait_envoy_ready, envoy_binary, free_port, render_envoy,
)

HARDENING_KEYS = ("early_header_mutation_extensions", "normalize_path", "merge_slashes",
                  "path_with_escaped_slashes_action", "local_reply_config")


def _without_hardening(cfg: dict[str, Any]) -> dict[str, Any]:
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    for k in HARDENING_KEYS:
        hcm.pop(k, None)
    hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] != "envoy.filters.http.header_mutation"]
    return cfg


async def _round(port: int, body: bytes, headers: dict[str, str], n: int, conc: int, status: int
                 ) -> tuple[list[float], float]:
    for _ in range(20):
        await loadgen.run(port, "/v1/chat/completions", body, headers, 1, 1)
    res = await loadgen.run(port, "/v1/chat/completions", body, headers, n, conc)
    assert set(res.statuses) == {status}, res.statuses
    return res.latencies, res.rps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-n", type=int, default=1000, help="requests per round and concurrency")
    ap.add_argument("--concurrency", default="1,16")
    ap.add_argument("--request", choices=("routed", "local-reply"), default="routed")
    a = ap.parse_args()
    concs = [int(c) for c in a.concurrency.split(",")]
    ports = {p: free_port() for p in (8801, 9901, 50051, 50052, 8001, 8002, 9190)}
    model = "auto" if a.request == "routed" else "no-such-model"
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "What is the derivative of x^3?"}]}
                      ).encode()
    status = 200 if a.request == "routed" else 404
    headers = {"content-type": "application/json", "x-user-id": "bench"}
    rows: dict[tuple[str, int], list[tuple[float, float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        stack = Stack(ports=ports, overrides={"signals.enabled": False, "cache.enabled": False,
                                              "logging.level": "warning"},
                      workdir=tmp / "stack", log_dir=tmp / "logs")
        b_ports = {**ports, 8801: free_port(), 9901: free_port()}
        b_cfg = tmp / "envoy-unhardened.json"
        b_cfg.write_text(json.dumps(_without_hardening(render_envoy(ROOT / "envoy" / "envoy.yaml", b_ports))))
        with stack:
            b = subprocess.Popen(_dying_with_parent([str(envoy_binary()), "-c", str(b_cfg), "--use-dynamic-base-id",
                                                     "--log-level", "warn", "--concurrency", "2"]))
            try:
                _wait_envoy_ready(b_ports[9901], b, 30)
                envoys = {"shipped": (ports[8801], stack.procs["envoy"].pid), "unhardened": (b_ports[8801], b.pid)}
                for r in range(a.rounds):
                    order = list(envoys) if r % 2 == 0 else list(reversed(envoys))
                    for label in order:
                        port, pid = envoys[label]
                        for c in concs:
                            cpu0 = _cpu_seconds(pid)
                            lat, rps = asyncio.run(_round(port, body, headers, a.n, c, status))
                            cpu = (_cpu_seconds(pid) - cpu0) / (a.n + 20) * 1000
                            rows.setdefault((label, c), []).append((_pct(lat, 0.5), _pct(lat, 0.99), rps, cpu))
                            print(f"round {r} {label:10s} c={c:<3d} p50 {_pct(lat, 0.5):6.2f} ms  p99 "
                                  f"{_pct(lat, 0.99):6.2f} ms  {rps:7.0f} req/s  envoy {cpu:.3f} ms CPU/req",
                                  flush=True)
            finally:
                b.terminate()
                b.wait(timeout=10)
    print(f"\n{describe()}; {a.rounds} interleaved rounds x {a.n} requests, "
          f"{'keyword routing' if a.request == 'routed' else 'router 404 replies'}, medians over rounds")
    print(f"{'config':10s} {'conc':>4s} {'p50 ms':>7s} {'p99 ms':>7s} {'req/s':>7s} {'envoy CPU ms/req':>16s}")
    for (label, c), vals in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        med = [statistics.median(v[i] for v in vals) for i in range(4)]
        print(f"{label:10s} {c:4d} {med[0]:7.2f} {med[1]:7.2f} {med[2]:7.0f} {med[3]:16.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
