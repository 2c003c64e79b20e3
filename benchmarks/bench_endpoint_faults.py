"""Fault drill through Envoy: one endpoint of a model starts answering 500, then recovers.

The stack runs the ORIGINAL_DST variant (the router picks the endpoint) with qwen3-32b served by two
demo upstreams. Requests flow at a steady rate; at --fault-at the second endpoint fails every request,
at --heal-at it is healthy again. Per second, the table shows the share of requests sent to the faulty
endpoint and the error rate seen by clients: it should fall to ~0 within seconds of the fault (after
`fail_threshold` failures the endpoint is skipped for `cooldown_s`, then probed again) and recover after
the fault ends.

  .venv/bin/python benchmarks/bench_endpoint_faults.py
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from semrouter.devstack import Stack, free_port  # noqa: E402


async def drive(port: int, faulty_port: int, rate: float, duration: float, fault_at: float, heal_at: float
                ) -> dict[int, collections.Counter[str]]:
    per_sec: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    body = json.dumps({"model": "qwen3-32b", "messages": [{"role": "user", "content": "ping"}]}).encode()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    fault_url = f"http://127.0.0.1:{faulty_port}/_demo/fault"
    async with aiohttp.ClientSession() as s:
        t0 = time.monotonic()
        faulted = healed = False

        async def one(sec: int) -> None:
            async with s.post(url, data=body, headers={"content-type": "application/json"}) as r:
                await r.read()
                c = per_sec[sec]
                c["total"] += 1
                c["faulty"] += r.headers.get("x-demo-port") == str(faulty_port)
                c["errors"] += r.status >= 500

        tasks = []
        i = 0
        while (now := time.monotonic() - t0) < duration:
            if not faulted and now >= fault_at:
                async with s.post(fault_url, json={"status": 500}) as r:
                    await r.read()
                faulted = True
            if not healed and now >= heal_at:
                async with s.post(fault_url, json={"status": 0}) as r:
                    await r.read()
                healed = True
            tasks.append(asyncio.create_task(one(int(now))))
            i += 1
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        await asyncio.gather(*tasks)
    return per_sec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=40.0, help="requests per second")
    ap.add_argument("--duration", type=float, default=40.0)
    ap.add_argument("--fault-at", type=float, default=5.0)
    ap.add_argument("--heal-at", type=float, default=20.0)
    a = ap.parse_args()
    ports = {p: free_port() for p in (8801, 9901, 50051, 50052, 8001, 8002, 8003, 9190)}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        cfg = yaml.safe_load((ROOT / "config" / "semrouter.yaml").read_text())
        for m in cfg["models"]:
            if m["name"] == "qwen3-32b":
                m["endpoints"] = [{"address": "127.0.0.1", "port": 8002, "weight": 1},
                                  {"address": "127.0.0.1", "port": 8003, "weight": 1}]
        cfg["routing"]["endpoint_selection"] = "original_dst"
        cfg["logging"]["level"] = "warning"
        cfg["cache"] = {"enabled": False}
        src = tmp / "router.yaml"
        src.write_text(yaml.safe_dump(cfg))
        # the added endpoint goes on Envoy's ORIGINAL_DST allow-list too (docs/SECURITY.md)
        envoy_cfg = tmp / "envoy-original-dst.yaml"
        envoy_cfg.write_text((ROOT / "envoy" / "envoy-original-dst.yaml").read_text()
                             .replace("(8001|8002)", "(8001|8002|8003)"))
        stack = Stack(router_config=src, envoy_config=envoy_cfg, ports=ports,
                      workdir=tmp / "stack", log_dir=tmp / "logs")
        with stack:
            per_sec = asyncio.run(drive(ports[8801], ports[8003], a.rate, a.duration, a.fault_at, a.heal_at))
    print(f"\nrate {a.rate:.0f} req/s; endpoint :8003 fails with 500 from t={a.fault_at:.0f}s to t={a.heal_at:.0f}s")
    print(f"{'t (s)':>5s} {'requests':>8s} {'to faulty':>9s} {'errors':>7s}  phase")
    for sec in sorted(per_sec):
        c = per_sec[sec]
        phase = "fault" if a.fault_at <= sec < a.heal_at else ("healed" if sec >= a.heal_at else "normal")
        print(f"{sec:5d} {c['total']:8d} {c['faulty'] / c['total']:9.1%} {c['errors'] / c['total']:7.1%}  {phase}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
