"""RSS and duration of config reloads in one router process (`RouterServer.reload`, no Envoy needed).

Starts a router on the shipped config (signals on, cache off, loopback port 0), then: three reloads that
change only routing (a keyword rule: the ONNX analyzer is shared, nothing is loaded), then three that change
`signals.max_tokens` (a new analyzer is built while the old one serves; the old one is closed when its last
stream ends and its memory handed back). Prints RSS after each step.

    .venv/bin/python benchmarks/bench_reload.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from semrouter.config import load_config  # noqa: E402
from semrouter.server.app import RouterServer  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write(path: Path, rules: list[str], max_tokens: int) -> None:
    cfg = yaml.safe_load((ROOT / "config" / "semrouter.yaml").read_text())
    cfg["server"] = {"listen": "127.0.0.1:0", "metrics_listen": None, "watch_config_seconds": 0}
    cfg["logging"] = {"level": "warning"}
    cfg["signals"] = {**cfg.get("signals", {}), "model_dir": str(ROOT / "models"), "max_tokens": max_tokens}
    cfg["cache"] = {"enabled": False}
    cfg["keyword_rules"] = [*cfg.get("keyword_rules", []),
                            *({"name": w, "category": "math", "keywords": [w]} for w in rules)]
    path.write_text(yaml.safe_dump(cfg))


async def main() -> None:
    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / "semrouter.yaml"
        write(path, [], 256)
        srv = await RouterServer.create(load_config(path), path)
        try:
            await srv.holder.current.analyzer.analyze("warm up")
            print("| step | reload ms | RSS MiB right after | RSS MiB 1 s later |")
            print("|---|---:|---:|---:|")
            print(f"| start | | {rss_mb():.0f} | |")
            rules: list[str] = []
            for i in range(3):
                rules.append(f"word{i}")
                write(path, rules, 256)
                t = time.perf_counter()
                await srv.reload()
                ms, now = (time.perf_counter() - t) * 1000, rss_mb()
                await asyncio.sleep(1)
                print(f"| routing change {i + 1} | {ms:.0f} | {now:.0f} | {rss_mb():.0f} |")
            for i in range(3):
                write(path, rules, 128 + i)
                t = time.perf_counter()
                await srv.reload()
                ms = (time.perf_counter() - t) * 1000
                await srv.holder.current.analyzer.analyze("warm up")
                now = rss_mb()
                await asyncio.sleep(1)
                print(f"| signals change {i + 1} | {ms:.0f} | {now:.0f} | {rss_mb():.0f} |")
        finally:
            await srv.stop(0)


if __name__ == "__main__":
    asyncio.run(main())
