"""Train the jailbreak head; write modelbuild/artifacts/jailbreak_head.* (labels: benign, jailbreak).

    python -m modelbuild.train_jailbreak

Positives: modelbuild/data/jailbreak.jsonl label 1 (DAN/personas, "ignore previous instructions",
developer/god modes, fiction and hypothetical wrappers, prompt leaking, obfuscation). Negatives: its
label-0 rows (hard negatives: questions about jailbreaks, role-play, "ignore my typo"), the natural
chat requests and a sample of MMLU training stems. The threshold is picked on out-of-fold training
predictions (5 folds) as the lowest that keeps the benign false-positive rate at or under
`--fpr` and is recorded in `jailbreak_head.metrics.json`. The held-out eval
(modelbuild/data/jailbreak.eval.jsonl + natural_requests.eval.jsonl as benign) is reported with it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

from modelbuild.heads import (
    ARTIFACTS, DATA, ROOT, embed, export_head, held_out, logits, read_jsonl, softmax, train_classifier, write_labels,
)

LABELS = ("benign", "jailbreak")
MMLU = Path(__file__).resolve().parents[2] / "shared" / "data" / "mmlu-dev.jsonl.gz"
TARGET_RECALL, TARGET_FPR = 0.90, 0.02


def _train(x: np.ndarray, y: np.ndarray, epochs: int, hidden: int = 0):  # type: ignore[no-untyped-def]
    pos = max(1, int(y.sum()))
    w = np.where(y == 1, (len(y) - pos) / pos, 1.0)  # balance the classes
    return train_classifier(x, y, 2, w, hidden=hidden, epochs=epochs, weight_decay=1e-2, lr=1e-2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="train the jailbreak head")
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--mmlu", type=Path, default=MMLU)
    ap.add_argument("--mmlu-sample", type=int, default=1500)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--hidden", type=int, default=256, help="MLP hidden units (0 = logistic regression)")
    ap.add_argument("--fpr", type=float, default=0.01, help="target benign FPR on out-of-fold predictions")
    ap.add_argument("--out", type=Path, default=ARTIFACTS)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    rows = [(r["text"], int(r["label"])) for r in read_jsonl(DATA / "jailbreak.jsonl")]
    rows += [(r["text"], 0) for r in read_jsonl(DATA / "natural_requests.jsonl")]
    if args.mmlu.is_file():
        stems = [r["text"] for r in read_jsonl(args.mmlu) if not held_out(r["text"], 20)]
        rows += [(t, 0) for t in random.Random(0).sample(stems, min(args.mmlu_sample, len(stems)))]
    ev = [(r["text"], int(r["label"])) for r in read_jsonl(DATA / "jailbreak.eval.jsonl")]
    ev += [(r["text"], 0) for r in read_jsonl(DATA / "natural_requests.eval.jsonl")]
    assert not {t for t, _ in rows} & {t for t, _ in ev}, "eval leaks into train"

    x = embed([t for t, _ in rows] + [t for t, _ in ev], args.models)
    xtr, xev = x[: len(rows)], x[len(rows) :]
    y = np.array([lab for _, lab in rows], dtype=np.int64)
    yev = np.array([lab for _, lab in ev], dtype=np.int64)

    folds = np.arange(len(rows)) % 5
    random.Random(1).shuffle(folds)  # type: ignore[arg-type]
    oof = np.zeros(len(rows))
    for k in range(5):
        m = _train(xtr[folds != k], y[folds != k], args.epochs, args.hidden)
        oof[folds == k] = softmax(logits(m, xtr[folds == k]))[:, 1]
    benign = np.sort(oof[y == 0])
    allowed = int(np.floor(args.fpr * len(benign)))
    threshold = float(min(0.99, benign[len(benign) - allowed - 1] + 1e-4))
    model = _train(xtr, y, args.epochs, args.hidden)
    pev = softmax(logits(model, xev))[:, 1]
    recall = float((pev[yev == 1] >= threshold).mean())
    fpr = float((pev[yev == 0] >= threshold).mean())
    oof_recall = float((oof[y == 1] >= threshold).mean())
    report = {
        "threshold": round(threshold, 4), "eval_recall": round(recall, 4), "eval_fpr": round(fpr, 4),
        "eval_pos": int(yev.sum()), "eval_neg": int((yev == 0).sum()), "oof_recall": round(oof_recall, 4),
        "train_pos": int(y.sum()), "train_neg": int((y == 0).sum()),
    }
    print(json.dumps(report))
    fp = [ev[i][0] for i in np.where((yev == 0) & (pev >= threshold))[0]]
    fn = [ev[i][0] for i in np.where((yev == 1) & (pev < threshold))[0]]
    print(f"false positives: {len(fp)}  missed: {len(fn)}")
    for t in fp:
        print("  FP:", t[:90])
    for t in fn:
        print("  FN:", t[:90])
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        export_head(model, 1.0, args.out / "jailbreak_head.onnx")
        write_labels(args.out / "jailbreak_head.labels.json", LABELS)
        (args.out / "jailbreak_head.metrics.json").write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}/jailbreak_head.onnx")
    return 0 if recall >= TARGET_RECALL and fpr <= TARGET_FPR else 2


if __name__ == "__main__":
    sys.exit(main())
