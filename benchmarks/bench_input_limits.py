"""What one huge prompt costs everyone else (issue 12 item 5), through Envoy.

Starts the shipped stack (signals and cache on, `server.max_body_bytes` 5 MB) on free loopback ports and
sends short `auto` chat requests one after another, in rounds that alternate (A/B interleaved, the machine
is shared): alone, and beside one 4 MB PII-dense prompt (a hand-written contact line repeated) sent at the
same time. Prints the small requests' latency per setup, the big request's own latency, and the in-process
cost of the steps that run on the router's event loop for a 4 MB body.

  .venv/bin/python benchmarks/bench_input_limits.py [--rounds 5] [--per-round 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.machine import describe  # noqa: E402
from conftest import SHIPPED_PORTS, Client, user  # noqa: E402

from semrouter.devstack import Stack, free_port  # noqa: E402

LINE = "Contact Jane Roe at jane.roe@mailbox.org or +1 (555) 123-4567, 42 Main Street, Springfield IL 62704. "


def big_body(size: int = 4_000_000) -> bytes:
    return json.dumps(user(LINE * (size // len(LINE)))).encode()


def in_process_costs(raw: bytes, repeat: int = 3) -> dict[str, float]:
    """Milliseconds (best of `repeat`) of the event-loop steps for one body: parse+validate, log registration,
    window, rewrite."""
    from semrouter.config.schema import Model
    from semrouter.request.parse import parse_chat_request
    from semrouter.request.rewrite import rewrite_body
    from semrouter.request.window import analysis_window
    from semrouter.telemetry.logging import hide_in_logs

    model = Model(name="m", endpoints=({"address": "h", "port": 1},))
    best: dict[str, float] = {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        req = parse_chat_request(raw, len(raw) + 1)
        t1 = time.perf_counter()
        hide_in_logs([req.last_user_text])
        t2 = time.perf_counter()
        analysis_window(req.text_for("last_user"), 8000, 2000)
        t3 = time.perf_counter()
        rewrite_body(req.body, model, None, None)
        t4 = time.perf_counter()
        for k, v in (("parse+validate", t1 - t0), ("hide_in_logs", t2 - t1), ("window", t3 - t2),
                     ("rewrite", t4 - t3)):
            best[k] = min(best.get(k, 1e9), v * 1000)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=8)
    args = ap.parse_args()
    raw = big_body()
    with tempfile.TemporaryDirectory(prefix="bench-input-") as tmp:
        stack = Stack(ports={p: free_port() for p in SHIPPED_PORTS}, workdir=Path(tmp), log_dir=Path(tmp) / "logs",
                      overrides={"cache.milvus.uri": str(Path(tmp) / "m" / "cache.db"),
                                 "server.max_body_bytes": 5_000_000})
        stack.start()
        try:
            client = Client(stack.port(8801))
            nostore = {"cache-control": "no-store"}

            def small(i: int) -> float:
                t = time.perf_counter()
                assert client.chat(user(f"What is the capital of country number {i}?"), nostore).status == 200
                return (time.perf_counter() - t) * 1000

            for i in range(5):
                small(i)
            alone: list[float] = []
            during: list[float] = []
            big_ms: list[float] = []
            for _ in range(args.rounds):
                alone += [small(i) for i in range(args.per_round)]
                done = threading.Event()

                def send() -> None:
                    t = time.perf_counter()
                    r = client.chat(raw, nostore)
                    big_ms.append((time.perf_counter() - t) * 1000)
                    assert r.status == 200, r.body[:200]
                    done.set()
                threading.Thread(target=send, daemon=True).start()
                during += [small(i) for i in range(args.per_round)]
                done.wait(120)
        finally:
            stack.stop()

    def row(name: str, xs: list[float]) -> str:
        xs = sorted(xs)
        return (f"| {name} | {len(xs)} | {statistics.median(xs):.1f} | {xs[int(0.9 * (len(xs) - 1))]:.1f} | "
                f"{xs[-1]:.1f} |")

    print(f"machine: {describe()}; body {len(raw):,} bytes")
    print("| short requests | n | p50 ms | p90 ms | max ms |")
    print("|---|---|---|---|---|")
    print(row("alone", alone))
    print(row("beside a 4 MB PII-dense prompt", during))
    print(row("(the 4 MB request itself)", big_ms))
    print(f"\nmedian cost to a short request: {statistics.median(during) - statistics.median(alone):+.1f} ms")
    print("\n| event-loop step for the 4 MB body | best of 3, ms |")
    print("|---|---|")
    for k, v in in_process_costs(raw).items():
        print(f"| {k} | {v:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
