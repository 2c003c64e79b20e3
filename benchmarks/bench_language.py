"""Language signal benchmark: lingua's accuracy, latency and memory on the STS sentences of 11 languages.

    .venv/bin/python benchmarks/bench_language.py [--paraphrase ../shared/data/paraphrase-dev.jsonl.gz]
        [--per-language 500] [--setups low,high]

Data: the `sts` rows of paraphrase-dev (11 languages, DeepL translations of STS-B, line-aligned); the first
sentence `a` of the first N rows per language (nothing here was tuned on them: the detector is lingua's, the
only setting chosen is the mode, on these numbers). Also the Japanese MMLU questions (multilingual-dev) and
the English MMLU held-out stems, as prompts of the router's own kind. Each setup builds its own detector in a
fresh process (so its resident memory is its own) and times `LanguageDetector.detect` one text at a time.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modelbuild.heads import held_out, read_jsonl  # noqa: E402
from semrouter.signals.language import LanguageConfig, LanguageDetector  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def _rows(paraphrase: Path, per_language: int) -> list[tuple[str, str, str]]:
    """(set, expected code, text)."""
    out: list[tuple[str, str, str]] = []
    seen: Counter[str] = Counter()
    for r in read_jsonl(paraphrase):
        if r["kind"] == "sts" and seen[r["lang"]] < per_language:
            seen[r["lang"]] += 1
            out.append(("sts", r["lang"], r["a"]))
    ja = SHARED / "multilingual-dev.jsonl.gz"
    if ja.is_file():
        out += [("jmmlu", "ja", r["text"]) for r in read_jsonl(ja)[:per_language]]
    mmlu = SHARED / "mmlu-dev.jsonl.gz"
    if mmlu.is_file():
        out += [("mmlu-heldout", "en", r["text"]) for r in read_jsonl(mmlu) if held_out(r["text"], 20)][:per_language]
    return out


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _run(setup: str, rows: list[tuple[str, str, str]], q: mp.Queue) -> None:  # type: ignore[type-arg]
    before = _rss_mb()
    t = time.perf_counter()
    d = LanguageDetector(LanguageConfig(low_accuracy=setup == "low"))  # "shipped": two passes (see the class)
    build_s = time.perf_counter() - t
    mem_mb = _rss_mb() - before
    for _, _, text in rows[:50]:
        d.detect(text)  # warm-up
    res: dict[str, list[tuple[bool, float, str]]] = defaultdict(list)
    for name, code, text in rows:
        t = time.perf_counter()
        got = d.detect(text)
        res[f"{name}:{code}"].append((got == code, (time.perf_counter() - t) * 1e6, got))
    q.put({"setup": setup, "build_s": build_s, "mem_mb": mem_mb, "res": dict(res)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paraphrase", type=Path, default=SHARED / "paraphrase-dev.jsonl.gz")
    ap.add_argument("--per-language", type=int, default=500)
    ap.add_argument("--setups", default="shipped,low")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = _rows(args.paraphrase, args.per_language)
    ctx = mp.get_context("spawn")
    out = []
    for setup in args.setups.split(","):
        q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        p = ctx.Process(target=_run, args=(setup, rows, q))
        p.start()
        out.append(q.get())
        p.join()
    keys = sorted({k for o in out for k in o["res"]})
    print("\n## Language detection accuracy (lingua, detect set = the 11 STS languages)\n")
    print("| set:language | n | " + " | ".join(f"{o['setup']} accuracy" for o in out)
          + f" | most common miss ({out[0]['setup']}) |")
    print("|---|---:|" + "---:|" * len(out) + "---|")
    for k in keys:
        n = len(out[0]["res"][k])
        misses = Counter(g for ok, _, g in out[0]["res"][k] if not ok).most_common(1)
        cells = [f"{sum(ok for ok, _, _ in o['res'][k]) / n:.4f}" for o in out]
        print(f"| {k} | {n} | " + " | ".join(cells) + f" | {misses[0] if misses else '-'} |")
    print("| **STS, all 11** | " + str(sum(len(v) for k, v in out[0]["res"].items() if k.startswith("sts:"))) + " | "
          + " | ".join(f"**{_acc(o, 'sts:'):.4f}**" for o in out) + " | |")
    print("\n## Cost per detect (one text at a time) and of the detector\n")
    print("| setup | p50 µs | p99 µs | build s | resident memory MB |\n|---|---:|---:|---:|---:|")
    for o in out:
        lat = sorted(t for v in o["res"].values() for _, t, _ in v)
        print(f"| {o['setup']} | {statistics.median(lat):.0f} | {lat[int(0.99 * (len(lat) - 1))]:.0f} | "
              f"{o['build_s']:.2f} | {o['mem_mb']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(out))


def _acc(o: dict, prefix: str) -> float:
    v = [ok for k, rows in o["res"].items() if k.startswith(prefix) for ok, _, _ in rows]
    return sum(v) / len(v)


if __name__ == "__main__":
    main()
