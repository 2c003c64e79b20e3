"""Cache-hit latency through Envoy at concurrency 1: exact repeats vs paraphrase (semantic-stage) hits.

Starts the shipped stack (Envoy + router + demo upstreams) on free loopback ports with the embedded
Milvus Lite cache, stores a few questions, then asks, interleaved one request at a time, each question
again verbatim (exact stage: no encoder pass) and in a reworded form (typo, politeness wrapper, case:
the semantic stage, after the signals' encoder pass). Prints p50/p90 per kind and the share of requests
that were hits (a paraphrase that misses is not counted in its latency row).

    .venv/bin/python benchmarks/bench_cache_hit_latency.py [--rounds 100]
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from semrouter.devstack import Stack, free_port  # noqa: E402

# (stored question, paraphrase): written for this benchmark
PAIRS = [
    ("What are the main renewable energy sources?", "What are the main renewable enrgy sources?"),
    ("How do I reverse a list in Python?", "Hi! How do I reverse a list in Python? Thanks in advance."),
    ("What is the capital city of Australia?", "what is the capital city of australia"),
    ("Explain how vaccines train the immune system.", "Could you explain how vaccines train the immune system?"),
]


def ask(port: int, text: str) -> tuple[float, bool]:
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": text}]})
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t = time.perf_counter()
    c.request("POST", "/v1/chat/completions", body, {"content-type": "application/json", "x-user-id": "bench"})
    r = c.getresponse()
    r.read()
    dt = time.perf_counter() - t
    c.close()
    return dt, r.getheader("x-vsr-cache-hit") == "true"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    a = ap.parse_args()
    ports = {p: free_port() for p in (8801, 9901, 50051, 50052, 8001, 8002, 9190)}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        stack = Stack(ports=ports, overrides={"logging.level": "warning", "cache.milvus.uri": str(tmp / "c.db")},
                      workdir=tmp, log_dir=tmp / "logs")
        with stack:
            port = ports[8801]
            for q, _ in PAIRS:
                ask(port, q)
            deadline = time.monotonic() + 20
            while not all(ask(port, q)[1] for q, _ in PAIRS) and time.monotonic() < deadline:
                time.sleep(0.2)
            lat: dict[str, list[float]] = {"exact": [], "paraphrase": []}
            hits = {"exact": 0, "paraphrase": 0}
            for _ in range(a.rounds):
                for q, p in PAIRS:
                    for kind, text in (("exact", q), ("paraphrase", p)):
                        dt, hit = ask(port, text)
                        hits[kind] += hit
                        if hit:
                            lat[kind].append(dt)
    n = a.rounds * len(PAIRS)
    print(f"machine: {platform.machine()}, {platform.processor() or platform.system()}; {n} requests per kind, "
          "concurrency 1, interleaved")
    print(f"{'kind':>10} {'hits':>6} {'p50 ms':>7} {'p90 ms':>7} {'mean ms':>8}")
    for kind, xs in lat.items():
        print(f"{kind:>10} {hits[kind] / n:6.0%} {pct(xs, 0.5):7.2f} {pct(xs, 0.9):7.2f} "
              f"{(statistics.mean(xs) * 1000 if xs else float('nan')):8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
