"""semrouter (Envoy + router) side by side with the LiteLLM proxy: same demo upstreams, same load client, one run.

Everything runs on loopback on this machine: the repo's demo upstreams (one per model), semrouter's shipped stack
(Envoy + router, signals on, Milvus Lite cache in a temporary directory), a second router + Envoy with signals and
cache off (routing alone) on the same upstreams, and two LiteLLM proxies from the separate benchmark venv
(`sh benchmarks/litellm/build_venv.sh`: litellm==1.110.2, never a semrouter dependency), one plain and one with
LiteLLM's in-memory cache. The client is `benchmarks/loadgen.py` (closed loop, keep-alive). Each of `--rounds`
rounds runs every row once, in an order that rotates from round to round; the table gives the median over rounds
of each row's p50/p99 and requests/s, and "added" is a row's p50 minus the direct upstream's p50 of the same round
(median over rounds). CPU ms per request is read from /proc for the proxy's own processes (router + Envoy, or
LiteLLM). Every process is stopped by its PID at the end.

Rows: explicit model (`llama-3.1-8b` named) at concurrency 1 and 16: semrouter routing alone, semrouter as shipped
(the named model's policies need the jailbreak head; cache bypassed with `x-semrouter-cache: bypass`), LiteLLM;
exact cache hits (one prompt asked over and over by one tenant): semrouter's cache vs LiteLLM's in-memory cache;
`auto` with all signals (semrouter; cache bypassed). LiteLLM's semantic auto-router is not run: it embeds each
prompt by calling an embedding model over an API (`auto_router_embedding_model`, LiteLLM encoder of the
`semantic-router` package), and this machine has none offline (the demo upstream's /v1/embeddings returns a fixed
vector, which would time only LiteLLM's plumbing, not a router).

    sh benchmarks/litellm/build_venv.sh
    .venv/bin/python benchmarks/bench_vs_litellm.py [--rounds 5] [--n1 200] [--n16 800]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import loadgen  # noqa: E402

from bench_routing_overhead import _cpu_seconds  # noqa: E402
from semrouter.devstack import Stack, free_port  # noqa: E402

LITELLM = ROOT / "build" / "litellm-venv" / "bin" / "litellm"
PATH = "/v1/chat/completions"
MODEL = "llama-3.1-8b"
# prompts written here (no data set): one per row family
PROMPT_ROUTE = "Give me three tips for keeping a sourdough starter alive over a long weekend."
PROMPT_HIT = "Which planet in our solar system has the longest day?"
PROMPT_AUTO = "Can you explain how a heat pump moves warmth out of cold winter air?"


@dataclass
class Row:
    name: str  # "family / system"
    port: int
    body: bytes
    headers: dict[str, str]
    pids: Callable[[], list[int]]
    counts: Callable[[loadgen.Reply], bool] | None = None  # what "hit" means for this row


def _body(model: str, prompt: str) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}]}).encode()


def _litellm_config(path: Path, ports: dict[str, int], cache: bool) -> None:
    models = [{"model_name": name, "litellm_params": {"model": f"openai/{name}",
                                                      "api_base": f"http://127.0.0.1:{port}/v1", "api_key": "none"}}
              for name, port in ports.items()]
    cfg: dict[str, object] = {"model_list": models}
    if cache:
        cfg["litellm_settings"] = {"cache": True, "cache_params": {"type": "local"}}
    path.write_text(json.dumps(cfg))  # JSON is YAML


_QUIET_LOGS = {  # uvicorn's per-request access log off, as the router runs at warning level here
    "version": 1, "disable_existing_loggers": False,
    "handlers": {"h": {"class": "logging.StreamHandler"}},
    "loggers": {"uvicorn": {"handlers": ["h"], "level": "WARNING"},
                "uvicorn.access": {"handlers": ["h"], "level": "WARNING", "propagate": False}},
}


class LiteLLMProxy:
    """One LiteLLM proxy process (`--num_workers 1`) on a free loopback port; `stop()` ends it by PID."""

    def __init__(self, workdir: Path, upstreams: dict[str, int], cache: bool) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.key = "sk-" + secrets.token_hex(32)  # LiteLLM refuses to start without a master key
        cfg, logcfg = workdir / "litellm.yaml", workdir / "log.json"
        _litellm_config(cfg, upstreams, cache)
        logcfg.write_text(json.dumps(_QUIET_LOGS))
        env = {**os.environ, "LITELLM_MASTER_KEY": self.key, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
               "LITELLM_TELEMETRY": "False", "NO_PROXY": "127.0.0.1,localhost"}
        self._log = open(workdir / "litellm.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([str(LITELLM), "--config", str(cfg), "--host", "127.0.0.1", "--port",
                                      str(self.port), "--num_workers", "1", "--log_config", str(logcfg)],
                                     cwd=workdir, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"LiteLLM exited with code {self.proc.returncode} (log: {self._log.name})")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health/liveliness", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError("LiteLLM did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        try:
            total += _cpu_seconds(p)
        except OSError:
            pass
    return total


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


async def _measure(row: Row, n: int, conc: int) -> tuple[float, float, float, float, float]:
    """(p50 ms, p99 ms, req/s, hit share, CPU ms per request of the row's processes)."""
    for _ in range(10):  # warm-up on the row's own connection pattern (and, for cache rows, the entry is stored)
        await loadgen.run(row.port, PATH, row.body, row.headers, 1, 1, counts=row.counts)
        await asyncio.sleep(0.02)
    pids = row.pids()
    before = _cpu(pids)
    res = await loadgen.run(row.port, PATH, row.body, row.headers, n, conc, counts=row.counts)
    cpu = (_cpu(pids) - before) / n * 1000
    if set(res.statuses) != {200}:
        raise RuntimeError(f"{row.name}: statuses {res.statuses}")
    return _pct(res.latencies, 0.5), _pct(res.latencies, 0.99), res.rps, res.header_true / n, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n1", type=int, default=200, help="requests per row at concurrency 1")
    ap.add_argument("--n16", type=int, default=800, help="requests per row at concurrency 16")
    ap.add_argument("--json", type=Path, help="also write every round's numbers here")
    a = ap.parse_args()
    if not LITELLM.exists():
        print("LiteLLM venv missing: run `sh benchmarks/litellm/build_venv.sh` first", file=sys.stderr)
        return 2
    shipped = {p: free_port() for p in (8801, 9901, 50051, 50052, 8001, 8002, 9190)}
    bare = {p: free_port() for p in (8801, 9901, 50051, 50052, 9190)} | {8001: shipped[8001], 8002: shipped[8002]}
    up = {"llama-3.1-8b": shipped[8001], "qwen3-32b": shipped[8002]}
    results: dict[tuple[str, int], list[tuple[float, ...]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-litellm-") as td:
        tmp = Path(td)
        a_stack = Stack(ports=shipped, workdir=tmp / "shipped", log_dir=tmp / "shipped" / "logs",
                        overrides={"logging.level": "warning", "cache.milvus.uri": str(tmp / "cache.db")})
        b_stack = Stack(ports=bare, workdir=tmp / "bare", log_dir=tmp / "bare" / "logs", start_upstreams=False,
                        overrides={"logging.level": "warning", "signals.enabled": False, "cache.enabled": False})
        lite = LiteLLMProxy(tmp / "litellm", up, cache=False)
        lite_cache = LiteLLMProxy(tmp / "litellm-cache", up, cache=True)
        try:
            a_stack.start()
            b_stack.start()
            lite.wait_ready()
            lite_cache.wait_ready()
            ct = {"content-type": "application/json"}
            sem = lambda st: lambda: [st.procs["router"].pid, st.procs["envoy"].pid]  # noqa: E731
            lpids = lambda p: lambda: [p.proc.pid, *_children(p.proc.pid)]  # noqa: E731
            none: Callable[[], list[int]] = list
            bypass = {**ct, "authorization": "Bearer sk-bench", "x-semrouter-cache": "bypass"}
            rows = [
                Row("explicit / direct upstream", shipped[8001], _body(MODEL, PROMPT_ROUTE), ct, none),
                Row("explicit / semrouter, routing alone", b_stack.port(8801), _body(MODEL, PROMPT_ROUTE),
                    bypass, sem(b_stack)),
                Row("explicit / semrouter shipped (jailbreak head)", a_stack.port(8801), _body(MODEL, PROMPT_ROUTE),
                    bypass, sem(a_stack)),
                Row("explicit / LiteLLM", lite.port, _body(MODEL, PROMPT_ROUTE),
                    {**ct, "authorization": f"Bearer {lite.key}"}, lpids(lite)),
                Row("cache hit / semrouter", a_stack.port(8801), _body(MODEL, PROMPT_HIT),
                    {**ct, "authorization": "Bearer sk-bench-tenant"}, sem(a_stack)),
                Row("cache hit / LiteLLM in-memory", lite_cache.port, _body(MODEL, PROMPT_HIT),
                    {**ct, "authorization": f"Bearer {lite_cache.key}"}, lpids(lite_cache),
                    counts=lambda r: "x-litellm-cache-key" in r.headers),
                Row("auto / semrouter, all signals", a_stack.port(8801), _body("auto", PROMPT_AUTO), bypass,
                    sem(a_stack)),
            ]
            for rnd in range(a.rounds):
                order = rows[rnd % len(rows):] + rows[:rnd % len(rows)]
                for conc, n in ((1, a.n1), (16, a.n16)):
                    for row in order:
                        m = asyncio.run(_measure(row, n, conc))
                        results.setdefault((row.name, conc), []).append(m)
                        print(f"round {rnd + 1} c={conc:<2d} {row.name:48s} p50 {m[0]:7.2f} ms  p99 {m[1]:7.2f} ms "
                              f"{m[2]:6.0f} req/s  hits {m[3]:4.0%}  cpu {m[4]:.2f} ms/req", flush=True)
        finally:
            lite_cache.stop()
            lite.stop()
            b_stack.stop()
            a_stack.stop()
    if a.json:
        a.json.write_text(json.dumps({f"{k[0]} @ c={k[1]}": v for k, v in results.items()}, indent=1))
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; "
          f"{a.rounds} rounds (rotating order), median over rounds")
    print("| row | concurrency | p50 ms | added p50 ms (vs direct upstream) | p99 ms | req/s | hits | "
          "proxy CPU ms/req |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for conc in (1, 16):
        direct = results[("explicit / direct upstream", conc)]
        for row in rows:
            ms = results[(row.name, conc)]
            added = statistics.median(m[0] - d[0] for m, d in zip(ms, direct, strict=True))
            med = [statistics.median(m[i] for m in ms) for i in range(5)]
            added_s = "" if row.name.startswith("explicit / direct") else f"+{added:.2f}"
            print(f"| {row.name} | {conc} | {med[0]:.2f} | {added_s} | {med[1]:.2f} | {med[2]:.0f} | {med[3]:.0%} | "
                  f"{med[4]:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
