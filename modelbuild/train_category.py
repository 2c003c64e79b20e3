"""Train the category head on encoder embeddings; write modelbuild/artifacts/category_head.*.

    python -m modelbuild.train_category [--data ../shared/data/mmlu-dev.jsonl.gz]

Data: MMLU question stems (80% train / 20% held out by a hash of the text) plus the natural chat
requests in modelbuild/data/natural_requests.jsonl (their eval twin is never trained on). A
validation slice of the training data picks the temperature (calibration). Embeddings come from
the built int8 encoder (run `python -m modelbuild.build_all` first). Reports accuracy on both
held-out sets and exits non-zero under the targets (85% MMLU, 90% natural).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from modelbuild.heads import (
    ARTIFACTS, DATA, ROOT, ece, embed, export_head, fit_temperature, held_out, logits, read_jsonl, softmax,
    train_classifier, write_labels,
)

LABELS: tuple[str, ...] = (
    "math", "physics", "chemistry", "biology", "health", "computer science", "engineering",
    "economics", "business", "law", "history", "philosophy", "psychology", "other",
)
MMLU = Path(__file__).resolve().parents[2] / "shared" / "data" / "mmlu-dev.jsonl.gz"
NATURAL_WEIGHT = 16.0  # a natural request counts this many MMLU stems
TARGETS = {"mmlu": 0.85, "natural": 0.90}


def _xy(rows: list[dict], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.array([LABELS.index(r["category"]) for r in rows], dtype=np.int64)
    return x, y


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="train the category head")
    ap.add_argument("--data", type=Path, default=MMLU)
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--hidden", type=int, default=512, help="MLP hidden units (0 = softmax regression)")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--out", type=Path, default=ARTIFACTS)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    mmlu = read_jsonl(args.data)
    nat_train = read_jsonl(DATA / "natural_requests.jsonl")
    nat_eval = read_jsonl(DATA / "natural_requests.eval.jsonl")
    assert not {r["text"] for r in nat_train} & {r["text"] for r in nat_eval}, "natural eval leaks into train"
    test_m = [r for r in mmlu if held_out(r["text"], 20)]
    train_m = [r for r in mmlu if not held_out(r["text"], 20)]
    # validation (temperature): every 10th-by-hash of the training rows, kept out of the fit
    def is_val(r: dict) -> bool:
        return held_out("val:" + r["text"], 10)

    fit_rows = [r for r in train_m + nat_train if not is_val(r)]
    val_rows = [r for r in train_m + nat_train if is_val(r)]
    nat_set = {r["text"] for r in nat_train}
    x_all = embed([r["text"] for r in fit_rows + val_rows + test_m + nat_eval], args.models)
    a, b, c = len(fit_rows), len(fit_rows) + len(val_rows), len(fit_rows) + len(val_rows) + len(test_m)
    xf, yf = _xy(fit_rows, x_all[:a])
    xv, yv = _xy(val_rows, x_all[a:b])
    xt, yt = _xy(test_m, x_all[b:c])
    xn, yn = _xy(nat_eval, x_all[c:])

    counts = np.bincount(yf, minlength=len(LABELS)).astype(np.float64)
    w = (counts.sum() / (len(LABELS) * counts)) ** 0.5  # soften class imbalance
    weights = w[yf] * np.array([NATURAL_WEIGHT if r["text"] in nat_set else 1.0 for r in fit_rows])
    model = train_classifier(xf, yf, len(LABELS), weights, hidden=args.hidden, epochs=args.epochs,
                             weight_decay=args.weight_decay)
    temp = fit_temperature(logits(model, xv), yv)
    report: dict[str, object] = {"temperature": temp, "hidden": args.hidden, "epochs": args.epochs,
                                 "train_rows": len(fit_rows), "val_rows": len(val_rows)}
    for name, x, y in (("mmlu", xt, yt), ("natural", xn, yn), ("val", xv, yv)):
        p = softmax(logits(model, x) / temp)
        acc = float((p.argmax(1) == y).mean())
        report[f"{name}_accuracy"] = round(acc, 4)
        report[f"{name}_ece"] = round(ece(p, y), 4)
        report[f"{name}_n"] = len(y)
        print(f"{name:8s} n={len(y):5d} accuracy={acc:.4f} ece={ece(p, y):.4f}")
    print(f"temperature={temp:.3f}")
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        export_head(model, temp, args.out / "category_head.onnx")
        write_labels(args.out / "category_head.labels.json", LABELS)
        (args.out / "category_head.metrics.json").write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}/category_head.onnx")
    ok = all(float(report[f"{k}_accuracy"]) >= v for k, v in TARGETS.items())  # type: ignore[arg-type]
    if not ok:
        print(f"below targets {TARGETS}", file=sys.stderr)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
