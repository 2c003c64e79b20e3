"""Signals benchmark: category accuracy/F1, jailbreak recall/FPR, latency and throughput (int8 vs fp32).

    .venv/bin/python benchmarks/bench_signals.py [--mmlu ../shared/data/mmlu-dev.jsonl.gz] [--quick]

Runs the real OnnxAnalyzer on the built models/ directory. Held-out sets: MMLU stems whose text
hash puts them in the 20% test split (never trained on) and modelbuild/data/*.eval.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modelbuild.heads import DATA, held_out, read_jsonl  # noqa: E402
from modelbuild.train_category import LABELS  # noqa: E402
from semrouter.config.schema import Category, ModelScore  # noqa: E402
from semrouter.signals.config import SignalsConfig  # noqa: E402
from semrouter.signals.onnx.analyzer import OnnxAnalyzer  # noqa: E402

REQUEST = "Can you explain, step by step, how to compute the eigenvalues of a 3x3 matrix and what they tell me about it?"


def _cats() -> list[Category]:
    return [Category(name=n, model_scores=(ModelScore(model="m", score=0.5),)) for n in LABELS]


async def _analyze_all(a: OnnxAnalyzer, texts: list[str], conc: int = 16) -> list:  # type: ignore[type-arg]
    out = []
    for i in range(0, len(texts), conc):
        out += await asyncio.gather(*(a.analyze(t) for t in texts[i : i + conc]))
    return out


def _f1(y: list[str], p: list[str]) -> dict[str, float]:
    res = {}
    for c in LABELS:
        tp = sum(1 for a, b in zip(y, p) if a == c and b == c)
        fp = sum(1 for a, b in zip(y, p) if a != c and b == c)
        fn = sum(1 for a, b in zip(y, p) if a == c and b != c)
        res[c] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return res


# (result key, batch wait ms, other SignalsConfig fields): the shipped default first
LATENCY_SETUPS: tuple[tuple[str, float, dict], ...] = (
    ("wait2", 2.0, {}),
    ("wait0", 0.0, {}),
    ("wait0-2threads-spin", 0.0, {"intra_op_threads": 2, "spin_wait": "always"}),
    ("wait0-2threads-spinrun", 0.0, {"intra_op_threads": 2, "spin_wait": "run"}),
)
LATENCY_LABELS = {"wait2": "2 ms, 1 thread (default)", "wait0": "0 ms, 1 thread",
                  "wait0-2threads-spin": "0 ms, 2 threads + spin_wait: always",
                  "wait0-2threads-spinrun": "0 ms, 2 threads + spin_wait: run"}


async def _precision(prec: str, sets: dict[str, list[dict]], jb: list[tuple[str, int]], quick: bool) -> dict:
    base = dict(model_dir=str(ROOT / "models"), precision=prec)
    a = await OnnxAnalyzer.create(SignalsConfig(**base), _cats())
    res: dict = {"sets": {}}
    try:
        for name, rows in sets.items():
            an = await _analyze_all(a, [r["text"] for r in rows])
            pred = [max(x.category_probs, key=x.category_probs.__getitem__) for x in an]
            y = [r["category"] for r in rows]
            res["sets"][name] = {"acc": float(np.mean([p == t for p, t in zip(pred, y)])), "f1": _f1(y, pred), "n": len(y)}
        thr = SignalsConfig().jailbreak.threshold_for(None)
        an = await _analyze_all(a, [t for t, _ in jb])
        s = np.array([x.jailbreak for x in an])
        lab = np.array([l for _, l in jb])
        res["jb"] = {"recall": float((s[lab == 1] >= thr).mean()), "fpr": float((s[lab == 0] >= thr).mean()),
                     "pos": int(lab.sum()), "neg": int((lab == 0).sum()), "thr": thr}
    finally:
        await a.close()
    n = 60 if quick else 300
    for key, wait, extra in LATENCY_SETUPS:
        a = await OnnxAnalyzer.create(SignalsConfig(**base, batch_max_wait_ms=wait, **extra), _cats())
        try:
            for _ in range(100):  # rows are measured one after another: compare close rows with an interleaved A/B
                await a.analyze(REQUEST)
            lat = []
            for _ in range(n):
                t = time.perf_counter()
                await a.analyze(REQUEST)
                lat.append((time.perf_counter() - t) * 1e3)
            res[key] = (statistics.median(lat), float(np.percentile(lat, 99)))
            if key == "wait2":
                rounds = 10 if quick else 40
                texts = [f"{REQUEST} (variant {i})" for i in range(16)]
                t = time.perf_counter()
                for _ in range(rounds):
                    await asyncio.gather(*(a.analyze(x) for x in texts))
                res["throughput"] = rounds * 16 / (time.perf_counter() - t)
                res["tokens"] = int(a.tokenizer.encode([REQUEST]).attention_mask.sum())
        finally:
            await a.close()
    return res


async def main_async(args: argparse.Namespace) -> None:
    sets: dict[str, list[dict]] = {}
    if args.mmlu.is_file():
        rows = [r for r in read_jsonl(args.mmlu) if held_out(r["text"], 20)]
        sets["mmlu-heldout"] = rows[: 300] if args.quick else rows
    sets["natural-eval"] = read_jsonl(DATA / "natural_requests.eval.jsonl")
    jb = [(r["text"], int(r["label"])) for r in read_jsonl(DATA / "jailbreak.eval.jsonl")]
    jb += [(r["text"], 0) for r in read_jsonl(DATA / "natural_requests.eval.jsonl")]
    r = {p: await _precision(p, sets, jb, args.quick) for p in ("int8", "fp32")}

    print("\n## Category accuracy (held out)\n")
    print("| set | n | int8 | fp32 | int8 - fp32 |\n|---|---:|---:|---:|---:|")
    for s in sets:
        i, f = r["int8"]["sets"][s], r["fp32"]["sets"][s]
        print(f"| {s} | {i['n']} | {i['acc']:.4f} | {f['acc']:.4f} | {i['acc'] - f['acc']:+.4f} |")
    print("\n## Per-category F1 (int8 / fp32)\n")
    print("| category | " + " | ".join(sets) + " |\n|---|" + "---:|" * len(sets))
    for c in LABELS:
        cells = [f"{r['int8']['sets'][s]['f1'][c]:.2f} / {r['fp32']['sets'][s]['f1'][c]:.2f}" for s in sets]
        print(f"| {c} | " + " | ".join(cells) + " |")
    print("\n## Jailbreak at the shipped threshold\n")
    print("| precision | threshold | recall | FPR | jailbreaks | benign |\n|---|---:|---:|---:|---:|---:|")
    for p in ("int8", "fp32"):
        j = r[p]["jb"]
        print(f"| {p} | {j['thr']:.2f} | {j['recall']:.3f} | {j['fpr']:.3f} | {j['pos']} | {j['neg']} |")
    print(f"\n## Latency, all signals, one request ({r['int8']['tokens']} tokens), sequential\n")
    print("| precision | batch wait, threads | p50 ms | p99 ms |\n|---|---|---:|---:|")
    for p in ("int8", "fp32"):
        for key, label in LATENCY_LABELS.items():
            p50, p99 = r[p][key]
            print(f"| {p} | {label} | {p50:.2f} | {p99:.2f} |")
    print("\n## Throughput, 16 concurrent requests (micro-batched)\n")
    print("| precision | requests/s |\n|---|---:|")
    for p in ("int8", "fp32"):
        print(f"| {p} | {r[p]['throughput']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2, default=float))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mmlu", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "mmlu-dev.jsonl.gz")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
