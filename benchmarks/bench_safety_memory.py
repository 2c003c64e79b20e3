"""The jailbreak exemplar memory (signals.jailbreak.memory) through the router's own OnnxAnalyzer: off vs on.

    .venv/bin/python benchmarks/bench_safety_memory.py [--repeat 200]

1. Eval-only sets (never trained on, never tuned on: modelbuild/train_jailbreak.py `load`'s second list): the share
   refused (jailbreak or injection, safety_verdict with the default thresholds) per set, memory off vs on.
2. Time: analyze() of a one-sentence prompt, a role-play request the memory reads (head jailbreak >= its gate) and
   a five-sentence prompt, and the safety step (`timings_ms["heads"]`), off and on alternating in blocks of 20
   calls in one process (p50 of each).
3. Memory: resident-set growth of loading `jailbreak_memory.onnx` into a session (the codes unpacked once).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modelbuild import train_jailbreak as tj  # noqa: E402
from benchmarks.machine import describe  # noqa: E402
from semrouter.config.schema import Config  # noqa: E402
from semrouter.decision.safety import safety_verdict  # noqa: E402
from semrouter.signals.config import SignalsConfig  # noqa: E402
from semrouter.signals.onnx.analyzer import OnnxAnalyzer  # noqa: E402

SHORT = "Can you explain how photosynthesis turns light into chemical energy in plants?"
READ = "Pretend you are a medieval innkeeper and greet me as I walk in from the rain."  # head jailbreak ~0.17: read
FIVE = ("I am planning a trip to the mountains next month. The weather there changes quickly in spring. "
        "We want to walk for about five hours a day. My friend has a bad knee and walks slowly. "
        "Which kind of trail and what gear would you suggest for us?")


def _cfg(memory: bool) -> Config:
    return Config.model_validate({"models": [{"name": "m", "endpoints": [{"address": "127.0.0.1", "port": 9}]}],
                                  "routing": {"default_model": "m"},
                                  "signals": {"jailbreak": {"memory": memory}}})


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _run(args: argparse.Namespace) -> None:
    import onnxruntime as ort

    before = _rss_mb()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(args.models / "jailbreak_memory.onnx"), so, providers=["CPUExecutionProvider"])
    print(f"jailbreak_memory.onnx: {(args.models / 'jailbreak_memory.onnx').stat().st_size / 1e6:.2f} MB on disk, "
          f"+{_rss_mb() - before:.1f} MB resident once loaded")
    del sess
    cfgs = {m: _cfg(m) for m in (False, True)}
    ans = {m: await OnnxAnalyzer.create(cfgs[m].signals.model_copy(update={"model_dir": str(args.models)}))
           for m in (False, True)}
    try:
        _, ev = tj.load(args.mmlu_sample) if not args.time_only else ([], [])
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for r in ev:
            groups[(r["origin"], r["label"])].append(r["text"])
        print("\n## Eval-only sets (never trained on), default thresholds: refused, memory off -> on")
        print(f"{'set':28s} {'label':10s} {'n':>5s} {'off':>7s} {'on':>7s}")
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for (origin, label), texts in sorted(groups.items()) if not args.time_only else ():
            n = [0, 0]
            for t in texts:
                for j, m in enumerate((False, True)):
                    a = await ans[m].analyze(t)
                    n[j] += safety_verdict(cfgs[m], a, None).blocked_by is not None
            kind = label if label in ("jailbreak", "injection") else "benign"
            for j in (0, 1):
                totals[kind][j] += n[j]
            totals[kind][2] += len(texts)
            print(f"{origin:28s} {label:10s} {len(texts):5d} {100 * n[0] / len(texts):6.1f}% {100 * n[1] / len(texts):6.1f}%")
        for kind, (a, b, n) in sorted(totals.items()):
            print(f"{'ALL':28s} {kind:10s} {n:5d} {100 * a / n:6.1f}% {100 * b / n:6.1f}%")

        print("\n## Time, off and on alternating in blocks of 20 (p50 ms)")
        for name, text in (("one sentence", SHORT), ("role-play (read)", READ), ("five sentences", FIVE)):
            total: dict[bool, list[float]] = {False: [], True: []}
            heads: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.repeat // 20):
                for m in (False, True):
                    for _ in range(20):
                        t0 = time.perf_counter()
                        a = await ans[m].analyze(text)
                        total[m].append((time.perf_counter() - t0) * 1e3)
                        heads[m].append(a.timings_ms.get("heads", 0.0))
            print(f"{name:15s} analyze() {statistics.median(total[False]):6.2f} -> {statistics.median(total[True]):6.2f}"
                  f"   safety+heads step {statistics.median(heads[False]):6.2f} -> {statistics.median(heads[True]):6.2f}")
    finally:
        for an in ans.values():
            await an.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--mmlu-sample", type=int, default=800)
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--time-only", action="store_true", help="only the time and memory rows")
    args = ap.parse_args()
    print(f"# bench_safety_memory: {describe()}")
    asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
