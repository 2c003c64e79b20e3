"""In-process A/B of the category second opinion (signals.multilingual.second_opinion) on a mix of English prompts.

    .venv/bin/python benchmarks/bench_second_opinion.py [--rounds 3] [--limit 238] [--what category_bias]

Two analyzers in one process, the shipped config with `second_opinion.enabled` false and true (`--what
category_bias`: the shipped config with `signals.classifier.category_bias` empty ("off") and as shipped ("on")), each awaiting
`analyze(prompt, <what an auto request needs>)` one prompt after another over the natural eval requests
(modelbuild/data/natural_requests.eval.jsonl, hand-written chat requests); blocks alternate per round. Prints p50 /
p90 / mean per variant and the share of prompts that took the e5 pass.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


async def main() -> int:
    import yaml

    from semrouter.config import parse_config
    from semrouter.decision.needs import signals_needed
    from semrouter.runtime import Shared, build_runtime

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=238)
    ap.add_argument("--what", choices=("second_opinion", "category_bias"), default="second_opinion",
                    help="what the two variants differ in (default: the second opinion off / on)")
    a = ap.parse_args()
    rows = [json.loads(x) for x in (ROOT / "modelbuild" / "data" / "natural_requests.eval.jsonl").read_text().splitlines()
            if x.strip()][: a.limit]
    prompts = [r["text"] for r in rows]
    rts = {}
    for name, on in (("off", False), ("on", True)):
        raw = yaml.safe_load((ROOT / "config" / "semrouter.yaml").read_text())
        raw["cache"] = {"enabled": False}
        sig = raw.setdefault("signals", {})
        sig["model_dir"] = str(ROOT / "models")
        sig.setdefault("multilingual", {})["model_dir"] = str(ROOT / "models" / "e5")
        if a.what == "second_opinion":
            sig["multilingual"]["second_opinion"] = {"enabled": on}
        elif not on:
            sig.setdefault("classifier", {})["category_bias"] = {}
        cfg = parse_config(raw)
        rts[name] = (await build_runtime(cfg, Shared()), signals_needed(cfg, "auto", cacheable=False))
    times: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for name, (rt, want) in rts.items():  # warm-up
            for p in prompts[:10]:
                await rt.analyzer.analyze(p, want)
        for rnd in range(a.rounds):
            for name in (("off", "on") if rnd % 2 == 0 else ("on", "off")):
                rt, want = rts[name]
                for p in prompts:
                    t = time.perf_counter()
                    await rt.analyzer.analyze(p, want)
                    times[name].append((time.perf_counter() - t) * 1e3)
            print(f"round {rnd + 1}: " + "  ".join(
                f"{n} p50 {statistics.median(v[-len(prompts):]):.2f} ms" for n, v in times.items()), flush=True)
        share = rts["on"][0].analyzer.second_opinions / ((a.rounds + 0) * len(prompts) + 10)
        for n, v in times.items():
            s = sorted(v)
            print(f"{n:4s} n={len(v)} p50 {statistics.median(v):.2f} ms  p90 {s[int(0.9 * len(s))]:.2f} ms  "
                  f"mean {statistics.mean(v):.2f} ms")
        print(f"share of prompts that took the e5 pass (on): {share:.3f}")
    finally:
        for rt, _ in rts.values():
            await rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
