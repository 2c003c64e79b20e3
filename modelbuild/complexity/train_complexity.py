"""Train, cross-validate and export the complexity head.

    .venv/bin/python -m modelbuild.complexity.train_complexity [--encoder models/encoder.onnx]

Reads ../shared/data/mmlu-dev.jsonl.gz; 25% of rows (by a hash of the text) are held out and never
touched here (benchmarks/bench_complexity.py measures on them). On the remaining training part it
  0. drops subjects where the large model scores below chance (broken labels; --keep-all keeps them),
  1. computes out-of-fold scores with 5-fold cross-validation (stratified by subject, seed 0): these give
     the CV cost-quality numbers and the knob -> threshold table (so the table is not fitted in-sample),
  2. fits the head on the whole training part and exports modelbuild/artifacts/complexity_head.onnx plus
     complexity_head.labels.json (labels, score definition, threshold table, CV metrics),
  3. checks onnxruntime's output against numpy (max abs diff < 1e-5), else exits non-zero.
Deterministic; one thread; well under a minute once the embeddings are cached in build/complexity/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from modelbuild.complexity import curves, data  # noqa: E402
from modelbuild.complexity.embed import cached_embeddings  # noqa: E402
from modelbuild.complexity.export import to_onnx  # noqa: E402
from modelbuild.complexity.head import EXPECTED_GAIN, SCORE_WEIGHTS, Tokens, fit_head  # noqa: E402

CHANCE = 0.25  # 4-choice questions: a subject where the large model scores below chance has broken labels
KNOBS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


def oof_scores(emb: np.ndarray, subjects: np.ndarray, outcome: np.ndarray, tokens: Tokens | None = None,
               vocab_size: int = 30522, folds: int = 5, score_weights: tuple[float, ...] = SCORE_WEIGHTS,
               layer_means: np.ndarray | None = None) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold

    out = np.zeros(len(outcome))
    for a, b in StratifiedKFold(folds, shuffle=True, random_state=0).split(emb, subjects):
        ta = (tokens[0][a], tokens[1][a]) if tokens is not None else None
        tb = (tokens[0][b], tokens[1][b]) if tokens is not None else None
        la = layer_means[a] if layer_means is not None else None
        lb = layer_means[b] if layer_means is not None else None
        out[b] = fit_head(emb[a], subjects[a], outcome[a], tokens=ta, vocab_size=vocab_size,
                          score_weights=score_weights, layer_means=la).score(emb[b], tb, lb)
    return out


def knob_table(scores: np.ndarray, small_ok: np.ndarray, large_ok: np.ndarray) -> list[dict[str, float]]:
    """For each knob k (target share of the small->large accuracy gap recovered): the score threshold
    (use the large model when score >= threshold) and the share to large it implied in cross-validation."""
    order = np.argsort(-scores, kind="stable")
    srt = scores[order]
    curve = curves.curve_from_scores(scores, small_ok, large_ok)
    sa, la = float(small_ok.mean()), float(large_ok.mean())
    pgr = (curve.accuracy - sa) / (la - sa)
    rows = []
    for k in KNOBS:
        if k <= 0.0:
            thr, n = 1.01, 0  # never large
        elif k >= 1.0:
            thr, n = 0.0, len(scores)  # always large
        else:
            n = int(np.nonzero(pgr >= k - 1e-12)[0][0])  # requests sent to large
            thr = float(srt[n - 1] + srt[min(n, len(srt) - 1)]) / 2.0 if 0 < n < len(srt) else 0.0
        rows.append({"knob": k, "threshold": round(float(thr), 4), "cv_share_large": round(n / len(scores), 4)})
    for i in range(1, len(rows)):  # thresholds never increase with the knob
        rows[i]["threshold"] = min(rows[i]["threshold"], rows[i - 1]["threshold"])
    return rows


def suspect_subjects(subjects: np.ndarray, large_ok: np.ndarray, min_rows: int = 30) -> list[str]:
    """Subjects where the large model is below chance: their labels teach "large fails here" wrongly."""
    out = []
    for name in np.unique(subjects):
        m = subjects == name
        if m.sum() >= min_rows and large_ok[m].mean() < CHANCE:
            out.append(str(name))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=data.DEFAULT_DATA)
    ap.add_argument("--encoder", type=Path, default=Path("models/encoder.onnx"))
    ap.add_argument("--tokenizer", type=Path, default=Path("models/tokenizer.json"))
    ap.add_argument("--keep-all", action="store_true", help="do not exclude below-chance subjects")
    ap.add_argument("--no-lexical", action="store_true", help="embedding-only head (no word-piece route)")
    ap.add_argument("--no-layers", action="store_true",
                    help="the routes read the sentence embedding only (not the lower layers' means)")
    ap.add_argument("--out", type=Path, default=Path("modelbuild/artifacts/complexity_head.onnx"))
    ap.add_argument("--score-weights", type=float, nargs=4, default=list(SCORE_WEIGHTS),
                    metavar=("BOTH_OK", "ONLY_SMALL_OK", "ONLY_LARGE_OK", "BOTH_WRONG"),
                    help="score = 0.5 + 0.5 * outcomes @ weights (default 0 -0.6 1 -0.2, see head.py; "
                         "the plain expected accuracy gain is 0 -1 1 0)")
    args = ap.parse_args(argv)
    weights = tuple(args.score_weights)
    np.random.seed(0)

    ds = data.load(args.data)
    train = ~data.heldout_mask(ds.texts)
    emb = cached_embeddings(ds.texts, args.encoder, args.tokenizer)[train]
    excluded = suspect_subjects(ds.subject[train], ds.large_ok[train]) if not args.keep_all else []
    for name in excluded:
        print(f"excluding subject {name!r}: large-model accuracy below chance in the training part (broken labels?)")
    keep = ~np.isin(ds.subject[train], excluded)
    emb = emb[keep]
    layer_means = None
    if not args.no_layers:
        layer_means = cached_embeddings(ds.texts, args.encoder, args.tokenizer, output="layer_means")[train][keep]
    small_ok, large_ok, subjects = ds.small_ok[train][keep], ds.large_ok[train][keep], ds.subject[train][keep]
    outcome = data.outcomes(small_ok, large_ok)
    tokens: Tokens | None = None
    vocab_size = 30522
    if not args.no_lexical:
        from semrouter.signals.onnx.tokenize import TextTokenizer

        tok = TextTokenizer(args.tokenizer, 256)  # the runtime's tokenisation (SignalsConfig.max_tokens default)
        vocab_size = tok.vocab_size
        texts = [t for t, k in zip(np.array(ds.texts, dtype=object)[train], keep, strict=True) if k]
        tb = tok.encode(list(texts))
        tokens = (tb.input_ids, tb.attention_mask)
    print(f"training part: {len(outcome)} rows, small acc {small_ok.mean():.3f}, large acc {large_ok.mean():.3f}")

    oof = oof_scores(emb, subjects, outcome, tokens, vocab_size, score_weights=weights, layer_means=layer_means)
    cv = curves.summary(curves.curve_from_scores(oof, small_ok, large_ok), small_ok, large_ok)
    print("5-fold CV: " + ", ".join(f"{k}={v:.3f}" for k, v in cv.items()))
    table = knob_table(oof, small_ok, large_ok)
    for r in table:
        print(f"  knob {r['knob']:.2f} -> large if score >= {r['threshold']:.4f} (CV share to large {r['cv_share_large']:.3f})")

    head = fit_head(emb, subjects, outcome, tokens=tokens, vocab_size=vocab_size, score_weights=weights,
                    layer_means=layer_means)
    to_onnx(head, args.out)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
    feeds = {"embedding": emb[:256]}
    t256 = None
    l256 = layer_means[:256] if layer_means is not None and head.wants_layers else None
    if tokens is not None:
        t256 = (tokens[0][:256], tokens[1][:256])
        feeds |= {"input_ids": t256[0], "attention_mask": t256[1]}
    if l256 is not None:
        feeds["layer_means"] = l256
    probs, outs = sess.run(["probs", "outcomes"], feeds)
    diff = max(float(np.abs(probs[:, 1] - head.score(emb[:256], t256, l256)).max()),
               float(np.abs(outs - head.outcomes(emb[:256], t256, l256)).max()))
    print(f"onnx vs numpy max abs diff {diff:.2e}; {args.out} {args.out.stat().st_size / 1e3:.0f} kB")
    meta = {
        "labels": ["small_model_ok", "needs_large_model"],
        "score": ("probs[:,1] = (1 + expected accuracy gain of the large model over the small one) / 2; "
                  "0.5 = no expected gain." if weights == EXPECTED_GAIN else
                  f"probs[:,1] = 0.5 + 0.5 * outcomes @ {list(weights)} (the expected gain, also charging for "
                  "questions both models get wrong).")
        + " outcomes = P(both ok, only small ok, only large ok, both wrong).",
        "outcome_labels": list(data.OUTCOME_NAMES),
        "score_weights": list(weights),
        "inputs": {"embedding": [None, int(emb.shape[1])],
                   **({"input_ids": [None, None], "attention_mask": [None, None]} if tokens is not None else {}),
                   **({"layer_means": [None, 7, int(emb.shape[1])]} if head.wants_layers else {})},
        "subject_layers": list(head.subject_layers),
        "outcome_layers": list(head.outcome_layers),
        "lexical_features": head.lexical.n_features if head.lexical is not None else 0,
        "encoder": args.encoder.name,
        "train_rows": int(len(outcome)),
        "excluded_subjects": excluded,
        "heldout": f"{data.HELDOUT_PERCENT}% by sha256('complexity-heldout' + text)",
        "cv_metrics": {k: round(v, 4) for k, v in cv.items()},
        "knob_thresholds": table,
        "knob_rule": "use the large model when score >= threshold(knob); interpolate linearly between rows",
    }
    args.out.with_suffix(".labels.json").write_text(json.dumps(meta, indent=2) + "\n")
    if diff > 1e-5:
        print("ERROR: ONNX output does not match the fitted head", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
