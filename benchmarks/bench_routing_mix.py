"""Category routing beyond MMLU: accuracy, calibration and confident-wrong rates per held-out source, with the
language gate, through the router's own analyzer and decision engine.

    .venv/bin/python benchmarks/bench_routing_mix.py [--config config/semrouter.yaml] [--quick]
        [--category-head build/category-eval/category_head.onnx]

The shipped category head is trained on every labelled row (modelbuild/train_category.py, final pass), so
its numbers on the mmlu/pro/chat parts below are NOT held out; `--category-head` swaps in the evaluation
head that train_category writes to build/category-eval/ (trained without those parts): the honest numbers.

Held-out parts (modelbuild/category_data.py; for the evaluation head none was trained on or used to choose a setting):
- mmlu: MMLU stems in the 20% hash split; also "stratified" = the mean of per-category accuracies (an equal
  share per category);
- pro: MMLU-Pro questions from sources never trained on (theoremQA, scibench and nine stemez subjects), per source;
- chat: tldr "how do I" prompts (a whole chat origin never trained on; computer science);
- natural: modelbuild/data/natural_requests.eval.jsonl (hand-written chat requests);
- jmmlu: Japanese MMLU questions (multilingual-dev), and the STS sentences of 10 non-English languages
  (paraphrase-dev, no category): how often a non-English prompt gets a confident category.
Each text goes through OnnxAnalyzer (int8, one text per encoder run as at concurrency 1 is approximated by
16-way micro-batches: the analyzer's numbers are the same at 1 and 16, see RESULTS) and LanguageDetector, then
`decide()` with the config's categories, threshold and language section. "confident" = the classifier's top
probability >= signals.classifier.threshold. "routed wrong" = decide() put the request in a category other
than the true one (classifier or language rule). ECE: 10 bins of the top probability. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modelbuild.category_data import SHARED, load_mix  # noqa: E402
from modelbuild.heads import read_jsonl  # noqa: E402
from modelbuild.train_category import LABELS  # noqa: E402
from semrouter.config import load_config  # noqa: E402
from semrouter.decision.engine import decide  # noqa: E402
from semrouter.signals.language import LanguageDetector  # noqa: E402
from semrouter.signals.onnx.analyzer import OnnxAnalyzer  # noqa: E402
from semrouter.signals.onnx.manifest import sha256_file  # noqa: E402


def _ece(conf: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    total = 0.0
    for lo in np.linspace(0, 1, bins, endpoint=False):
        m = (conf > lo) & (conf <= lo + 1.0 / bins)
        if m.any():
            total += m.mean() * abs(right[m].mean() - conf[m].mean())
    return float(total)


def _model_dir_with(head: Path, tmp: Path) -> Path:
    """A copy of models/ (links) whose category head is `head` (the manifest's hash updated)."""
    src = ROOT / "models"
    for f in src.iterdir():
        if f.name not in ("manifest.json", "category_head.onnx"):
            (tmp / f.name).symlink_to(f.resolve())
    shutil.copyfile(head, tmp / "category_head.onnx")
    m = json.loads((src / "manifest.json").read_text())
    m["files"]["category_head.onnx"] = sha256_file(tmp / "category_head.onnx")
    (tmp / "manifest.json").write_text(json.dumps(m))
    return tmp


async def _run(cfg_path: Path, sets: dict[str, list[dict]], model_dir: Path) -> dict[str, list[dict]]:
    cfg = load_config(cfg_path)
    sig = cfg.signals.model_copy(update={"model_dir": str(model_dir)})
    # the detector goes into the analyzer as in semrouter.runtime: the language decides whether the e5 head (for
    # signals.multilingual.languages) or the MiniLM head with its e5 second opinion reads the prompt
    lang = LanguageDetector(cfg.language)
    an = await OnnxAnalyzer.create(sig, cfg.categories, lang if cfg.language.enabled else None)
    out: dict[str, list[dict]] = {}
    try:
        for name, rows in sets.items():
            res = []
            for i in range(0, len(rows), 16):
                chunk = rows[i : i + 16]
                analyses = await asyncio.gather(*(an.analyze(r["text"]) for r in chunk))
                for r, a in zip(chunk, analyses, strict=True):
                    top, p = max(a.category_probs.items(), key=lambda kv: kv[1])
                    language = a.language or lang.detect(r["text"])
                    d = decide(cfg, "auto", None, a, language)
                    res.append({"source": r["source"], "category": r["category"], "top": top, "p": p,
                                "language": language, "routed": d.category, "reason": d.reason})
            out[name] = res
    finally:
        await an.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "config" / "semrouter.yaml")
    ap.add_argument("--quick", action="store_true", help="at most 300 rows per set")
    ap.add_argument("--sts-per-language", type=int, default=200)
    ap.add_argument("--category-head", type=Path, default=None,
                    help="score with this category head instead of the shipped one (e.g. the evaluation head)")
    args = ap.parse_args()
    thr = load_config(args.config).signals.classifier.threshold
    mix = load_mix()
    sets = {k: v for k, v in mix.held_out.items() if v}
    sets["jmmlu"] = [{"text": r["text"], "category": r["category"], "source": "jmmlu"}
                     for r in read_jsonl(SHARED / "multilingual-dev.jsonl.gz")]
    seen: Counter[str] = Counter()
    sts = []
    for r in read_jsonl(SHARED / "paraphrase-dev.jsonl.gz"):
        if r["kind"] == "sts" and r["lang"] != "en" and seen[r["lang"]] < args.sts_per_language:
            seen[r["lang"]] += 1
            sts.append({"text": r["a"], "category": None, "source": "sts:" + r["lang"]})
    sets["sts-non-en"] = sts
    sets["chat-unlabelled"] = mix.unlabelled
    if args.quick:
        sets = {k: v[:: max(1, len(v) // 300)] for k, v in sets.items()}
    with tempfile.TemporaryDirectory() as tmp:
        mdir = _model_dir_with(args.category_head, Path(tmp)) if args.category_head else ROOT / "models"
        res = asyncio.run(_run(args.config, sets, mdir))
    print(f"\ncategory head: {args.category_head or 'shipped (trained on the mmlu/pro/chat parts: not held out)'}")

    print(f"\n## Category signal per held-out part (classifier threshold {thr})\n")
    print("| part | n | accuracy | stratified | ECE | confident share | accuracy when confident | routed wrong |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    rows_by_source: dict[str, list[dict]] = defaultdict(list)
    for name, rows in res.items():
        if name in ("sts-non-en", "chat-unlabelled"):
            continue
        for r in rows:
            rows_by_source[r["source"] if name == "pro" else name].append(r)
        _line(name, rows, thr)
    print("\n## MMLU-Pro, per held-out source\n")
    print("| source | n | accuracy | stratified | ECE | confident share | accuracy when confident | routed wrong |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s in sorted(k for k in rows_by_source if k.startswith("pro:")):
        _line(s, rows_by_source[s], thr)
    print("\n## Per category (accuracy on mmlu / pro / chat+natural held out)\n")
    print("| category | mmlu | pro | natural |\n|---|---:|---:|---:|")
    for c in LABELS:
        cells = []
        for name in ("mmlu", "pro", "natural"):
            rs = [r for r in res.get(name, []) if r["category"] == c]
            cells.append(f"{np.mean([r['top'] == c for r in rs]):.3f} ({len(rs)})" if rs else "-")
        print(f"| {c} | " + " | ".join(cells) + " |")
    print("\n## Non-English prompts: confident category without / with the language gate\n")
    print("| set | n | detected language (top 2) | classifier confident | confident & wrong, classifier alone "
          "| routed to a category | routed wrong (with gate) |")
    print("|---|---:|---|---:|---:|---:|---:|")
    groups = {"jmmlu (ja)": res["jmmlu"]}
    for r in res["sts-non-en"]:
        groups.setdefault(r["source"], []).append(r)
    for name, rows in groups.items():
        n = len(rows)
        langs = Counter(r["language"] for r in rows).most_common(2)
        conf = [r["p"] >= thr for r in rows]
        cw = [r["p"] >= thr and r["category"] is not None and r["top"] != r["category"] for r in rows]
        routed = [r["routed"] is not None for r in rows]
        wrong = [r["routed"] is not None and r["category"] is not None and r["routed"] != r["category"] for r in rows]
        has_truth = rows[0]["category"] is not None
        print(f"| {name} | {n} | {langs} | {np.mean(conf):.3f} | {np.mean(cw):.3f} | {np.mean(routed):.3f} | "
              + (f"{np.mean(wrong):.3f}" if has_truth else "n/a") + " |")
    print("\n## Unlabelled chat prompts (role-play, tool use, arena-hard): where they go\n")
    rows = res["chat-unlabelled"]
    print(f"n={len(rows)}; confident share {np.mean([r['p'] >= thr for r in rows]):.3f}; routed categories: "
          f"{Counter(r['routed'] or 'default' for r in rows).most_common(6)}")


def _line(name: str, rows: list[dict], thr: float) -> None:
    right = np.array([r["top"] == r["category"] for r in rows], dtype=float)
    conf = np.array([r["p"] for r in rows])
    cats = sorted({r["category"] for r in rows})
    strat = np.mean([np.mean([r["top"] == c for r in rows if r["category"] == c]) for c in cats])
    sure = conf >= thr
    wrong = np.mean([r["routed"] is not None and r["routed"] != r["category"] for r in rows])
    print(f"| {name} | {len(rows)} | {right.mean():.4f} | {strat:.4f} | {_ece(conf, right):.4f} | {sure.mean():.3f} | "
          f"{right[sure].mean() if sure.any() else float('nan'):.4f} | {wrong:.3f} |")


if __name__ == "__main__":
    main()
