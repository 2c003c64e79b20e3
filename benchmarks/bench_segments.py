"""What the safety head's sentence segments cost, in process: analyze() with segments off vs on, interleaved.

  .venv/bin/python benchmarks/bench_segments.py [--models models] [--blocks 10] [--per-block 40]

One OnnxAnalyzer; the scorer's `segments` (rows encoded alone, labels.json `segments`) is switched between 0
and the head's value block by block, alternating which goes first, so both conditions see the same load on
a shared machine. Prompts: the routing bench prompt (one sentence: segments add nothing but the split) and a
five-sentence prompt (one extra encoder run over 5 sentences + 4 pairs). Prints per prompt and condition the
p50 of analyze() wall time and of the analyzer's own "heads" timing (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from benchmarks.bench_routing_overhead import PROMPTS  # noqa: E402
from semrouter.signals.config import SignalsConfig  # noqa: E402
from semrouter.signals.onnx.analyzer import OnnxAnalyzer  # noqa: E402


async def _run(args: argparse.Namespace) -> None:
    an = await OnnxAnalyzer.create(SignalsConfig(model_dir=str(args.models)))
    try:
        scorer = an.jailbreak
        assert scorer is not None and scorer.segments > 0, "the head has no segments (labels.json)"
        on = scorer.segments
        prompts = {"1 sentence": PROMPTS["signals"], "5 sentences": PROMPTS["signals-long"]}
        wall: dict[tuple[str, int], list[float]] = {(p, s): [] for p in prompts for s in (0, on)}
        heads: dict[tuple[str, int], list[float]] = {(p, s): [] for p in prompts for s in (0, on)}
        for text in prompts.values():  # warm-up
            for _ in range(5):
                await an.analyze(text)
        for b in range(args.blocks):
            for seg in ((0, on) if b % 2 == 0 else (on, 0)):
                scorer.segments = seg
                for name, text in prompts.items():
                    for _ in range(args.per_block):
                        t0 = time.perf_counter()
                        a = await an.analyze(text)
                        wall[(name, seg)].append((time.perf_counter() - t0) * 1e3)
                        heads[(name, seg)].append(a.timings_ms.get("heads", 0.0))
        scorer.segments = on
        print(f"{'prompt':12s} {'segments':>8s} {'n':>5s} {'analyze p50 ms':>15s} {'heads p50 ms':>13s}")
        for name in prompts:
            for seg in (0, on):
                w, h = wall[(name, seg)], heads[(name, seg)]
                print(f"{name:12s} {seg:8d} {len(w):5d} {statistics.median(w):15.3f} {statistics.median(h):13.3f}")
    finally:
        await an.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--blocks", type=int, default=10)
    ap.add_argument("--per-block", type=int, default=40)
    args = ap.parse_args()
    print(f"# bench_segments: {describe()}")
    asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
