"""A realistic mix through Envoy: repeats and paraphrases (cache hits), new prompts across categories, 20%
streaming, a few bad requests; concurrency 1, 16, 64 (closed loop, keep-alive, loopback only, bounded).

The shipped config (signals on, Milvus Lite embedded cache in a temporary directory) behind a real Envoy, with
the demo upstreams. Each request is drawn with a fixed seed: 35% a repeat of an earlier prompt of the same
tenant (exact hit once stored), 10% a paraphrase of one (case, punctuation, a filler word: semantic hit or
miss), 52% a new prompt (templates x topics across the categories, a number makes each one new), 3% bad
requests (malformed JSON 400, unknown model 404); 20% of the good ones stream (SSE); 8 tenants; 10% name a
model, the rest say `auto`. The prompts are written here (no data set). Prints p50/p90/p99, requests/s,
status counts and cache-hit share per level, then CPU ms per request and RSS per process.

    .venv/bin/python benchmarks/bench_mixed_load.py [-n 1500] [--concurrency 1,16,64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import loadgen  # noqa: E402

from bench_routing_overhead import _cpu_seconds  # noqa: E402
from semrouter.devstack import Stack, free_port  # noqa: E402

TEMPLATES = [
    "What is the derivative of x^{n} + {n}x with respect to x?", "Solve for y: {n}y - 7 = 3y + {n}.",
    "Explain how a {topic} works in simple terms (example {n}).", "Write a short poem about {topic} number {n}.",
    "What are the main causes of {topic}? Give {n} points.", "Summarise the history of {topic} in {n} sentences.",
    "Is it legal to break a lease early because of {topic}? Case {n}.",
    "How does {topic} affect blood pressure? Patient {n}.", "Write a Python function that sorts {n} {topic} records.",
    "What is the market outlook for {topic} in year {n}?",
]
TOPICS = ["photosynthesis", "inflation", "a heat pump", "the french revolution", "sleep", "black holes",
          "a compiler", "supply chains", "volcanoes", "vaccines", "jazz", "rent control"]
MODELS = ["llama-3.1-8b", "qwen3-32b"]


def paraphrase(text: str, rng: random.Random) -> str:
    t = text.lower() if rng.random() < 0.5 else text.upper()[:1] + text[1:]
    t = t.rstrip("?.") + ("?" if rng.random() < 0.5 else "")
    return ("Please, " + t) if rng.random() < 0.5 else t.replace(" the ", " the the ", 1)


def schedule(n: int, seed: int) -> list[tuple[str, bytes, dict[str, str]]]:
    """(kind, body, headers) for n requests; the same seed gives the same mix."""
    rng = random.Random(seed)
    seen: dict[str, list[str]] = {}
    out = []
    for i in range(n):
        tenant = f"tenant-{rng.randrange(8)}"
        h = {"content-type": "application/json", "x-user-id": tenant}
        r = rng.random()
        if r < 0.03:
            if rng.random() < 0.5:
                out.append(("bad", b'{"model": "auto", "messages": [', h))
            else:
                out.append(("bad", json.dumps({"model": "no-such-model", "messages": [
                    {"role": "user", "content": "hi"}]}).encode(), h))
            continue
        prev = seen.get(tenant, [])
        if r < 0.38 and prev:
            kind, text = "repeat", rng.choice(prev)
        elif r < 0.48 and prev:
            kind, text = "paraphrase", paraphrase(rng.choice(prev), rng)
        else:
            kind = "new"
            text = rng.choice(TEMPLATES).format(n=rng.randrange(10_000), topic=rng.choice(TOPICS))
            seen.setdefault(tenant, []).append(text)
        model = rng.choice(MODELS) if rng.random() < 0.10 else "auto"
        body = {"model": model, "messages": [{"role": "user", "content": text}]}
        if rng.random() < 0.20:
            body["stream"] = True
        out.append((kind, json.dumps(body).encode(), h))
    return out


async def drive(port: int, reqs: list[tuple[str, bytes, dict[str, str]]], conc: int) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    lat: list[float] = []
    statuses: dict[int, int] = {}
    hits = 0
    queue = list(reversed(reqs))

    async def connect() -> loadgen._Conn:
        return (await loop.create_connection(loadgen._Conn, "127.0.0.1", port))[1]  # noqa: SLF001

    async def client() -> None:
        nonlocal hits
        conn = await connect()
        try:
            while queue:
                _, body, headers = queue.pop()
                raw = loadgen.build_request(port, "/v1/chat/completions", body, headers)
                t = time.perf_counter()
                try:
                    r = await conn.request(raw)
                except ConnectionError:  # the server closed the idle connection: once more on a new one
                    conn.transport.close()  # type: ignore[union-attr]
                    conn = await connect()
                    t = time.perf_counter()
                    try:
                        r = await conn.request(raw)
                    except ConnectionError:
                        statuses[0] = statuses.get(0, 0) + 1
                        conn = await connect()
                        continue
                lat.append(time.perf_counter() - t)
                statuses[r.status] = statuses.get(r.status, 0) + 1
                hits += r.headers.get("x-vsr-cache-hit") == "true"
                if r.headers.get("connection", "").lower() == "close":
                    conn.transport.close()  # type: ignore[union-attr]
                    conn = await connect()
        finally:
            if conn.transport is not None:
                conn.transport.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(conc)))
    secs = time.perf_counter() - t0
    lat.sort()

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000

    return {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "rps": len(reqs) / secs, "statuses": statuses,
            "hits": hits / len(reqs)}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1500, help="requests per concurrency level")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="router config override")
    a = ap.parse_args()
    import yaml

    rows = []
    with tempfile.TemporaryDirectory() as td:
        over: dict[str, object] = {"logging.level": "warning", "cache.milvus.uri": str(Path(td) / "cache.db")}
        for kv in a.set:
            k, _, v = kv.partition("=")
            over[k] = yaml.safe_load(v)
        ports = {p: free_port() for p in (8801, 9901, 50051, 50052, 8001, 8002, 9190)}
        with Stack(ports=ports, overrides=over, workdir=Path(td) / "stack", log_dir=Path(td) / "logs") as st:
            pids = {name: p.pid for name, p in st.procs.items()}
            asyncio.run(drive(st.port(8801), schedule(100, seed=99), 4))  # warm-up, other prompts
            for i, conc in enumerate(int(c) for c in a.concurrency.split(",")):
                before = {k: _cpu_seconds(p) for k, p in pids.items()}
                res = asyncio.run(drive(st.port(8801), schedule(a.n, seed=i + 1), conc))
                cpu = {k: (_cpu_seconds(p) - before[k]) / a.n * 1000 for k, p in pids.items()}
                rows.append((conc, res, cpu, {k: rss_mb(p) for k, p in pids.items()}))
    print(f"\nmixed load through Envoy, {a.n} requests per level (3% bad, 20% of the rest streaming); "
          "status 0 = no answer (connection lost twice)")
    print("| concurrency | p50 ms | p90 ms | p99 ms | req/s | statuses | cache hits |")
    print("|---:|---:|---:|---:|---:|---|---:|")
    for conc, r, _, _ in rows:
        st = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))  # type: ignore[attr-defined]
        print(f"| {conc} | {r['p50']:.1f} | {r['p90']:.1f} | {r['p99']:.1f} | {r['rps']:.0f} | {st} | "
              f"{r['hits']:.0%} |")
    names = list(rows[0][2]) if rows else []
    print("\n| concurrency | " + " | ".join(f"{n} CPU ms/req" for n in names) + " | "
          + " | ".join(f"{n} RSS MiB" for n in names) + " |")
    print("|---:|" + "---:|" * (2 * len(names)))
    for conc, _, cpu, rss in rows:
        print(f"| {conc} | " + " | ".join(f"{cpu[n]:.2f}" for n in names) + " | "
              + " | ".join(f"{rss[n]:.0f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
