"""Cost-quality of the complexity router on the held-out 25% of mmlu-dev (never used in training).

    .venv/bin/python benchmarks/bench_complexity.py [--head modelbuild/artifacts/complexity_head.onnx]

Routers compared (accuracy = the correctness label of whichever model was picked):
  complexity            the ONNX head's score on the runtime encoder's embedding (fp32 and int8 encoders)
  random                expected value of random routing (a straight line)
  category (by error)   whole categories to large, in order of their training-set small-model error rate
  category (by gain)    same, in order of training-set (large acc - small acc)
  subject oracle        whole MMLU subjects in order of training-set gain, using the TRUE subject label
                        (not available at runtime; a reference for what domain priors alone can do)
CPT(95%) = smallest share to large reaching 95% of the large model's accuracy; PGR50 = smallest share
recovering 50% of the small->large accuracy gap; APGR = average gap recovered over all shares.
Also: the knob -> threshold table from complexity_head.labels.json checked on held-out data, and the
added latency of the head (and of text_features) per request.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from modelbuild.complexity import curves, data  # noqa: E402
from modelbuild.complexity.embed import cached_embeddings  # noqa: E402
from semrouter.signals.onnx.tokenize import TextTokenizer  # noqa: E402
from semrouter.signals.features import text_features  # noqa: E402


def head_session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def group_order(groups: np.ndarray, small_ok: np.ndarray, large_ok: np.ndarray, by: str) -> list[str]:
    def key(g: str) -> float:
        m = groups == g
        return float(1 - small_ok[m].mean()) if by == "error" else float(large_ok[m].mean() - small_ok[m].mean())

    return sorted(np.unique(groups).tolist(), key=lambda g: -key(g))


def acc_at(curve: curves.Curve, share: float) -> float:
    return float(np.interp(share, curve.share_large, curve.accuracy))


def feeds(sess: ort.InferenceSession, emb: np.ndarray, texts: list[str], tok: TextTokenizer,
          layer_means: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The head's inputs as the router builds them (word pieces / layer means only when the head reads them)."""
    out = {"embedding": np.ascontiguousarray(emb, dtype=np.float32)}
    names = {i.name for i in sess.get_inputs()}
    if "input_ids" in names:
        tb = tok.encode(texts)
        out |= {"input_ids": tb.input_ids, "attention_mask": tb.attention_mask}
    if "layer_means" in names:
        assert layer_means is not None
        out["layer_means"] = np.ascontiguousarray(layer_means, dtype=np.float32)
    return out


def latency_us(sess: ort.InferenceSession, emb: np.ndarray, texts: list[str], tok: TextTokenizer, batch: int,
               layer_means: np.ndarray | None, reps: int = 300) -> float:
    f = feeds(sess, emb[:batch], texts[:batch], tok, layer_means[:batch] if layer_means is not None else None)
    for _ in range(20):
        sess.run(["probs"], f)
    t0 = time.perf_counter()
    for _ in range(reps):
        sess.run(["probs"], f)
    return (time.perf_counter() - t0) / reps / batch * 1e6


def print_tables(routers: dict[str, curves.Curve], s_ok: np.ndarray, l_ok: np.ndarray) -> None:
    print("\n| router | CPT(95%) | PGR50 share | APGR | best acc |")
    print("|---|---|---|---|---|")
    for name, c in routers.items():
        r = curves.summary(c, s_ok, l_ok)
        print(f"| {name} | {r['cpt95']:.1%} | {r['cpt50']:.1%} | {r['apgr']:.3f} | {r['max_acc']:.3f} |")
    shares = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0]
    print("\naccuracy vs share sent to the large model\n")
    print("| router | " + " | ".join(f"{s:.0%}" for s in shares) + " |")
    print("|---|" + "---|" * len(shares))
    for name, c in routers.items():
        print(f"| {name} | " + " | ".join(f"{acc_at(c, s):.3f}" for s in shares) + " |")


def print_knobs(table: list[dict], score: np.ndarray, s_ok: np.ndarray, l_ok: np.ndarray, enc: str) -> None:
    sa, la = float(s_ok.mean()), float(l_ok.mean())
    print(f"\nknob -> threshold table checked on these rows ({enc})\n")
    print("| knob | threshold | CV share to large | held-out share | held-out gap recovered | held-out acc |")
    print("|---|---|---|---|---|---|")
    for row in table:
        use_large = score >= row["threshold"]
        acc = float(np.where(use_large, l_ok, s_ok).mean())
        print(
            f"| {row['knob']:.2f} | {row['threshold']:.4f} | {row['cv_share_large']:.1%} | "
            f"{use_large.mean():.1%} | {(acc - sa) / (la - sa):.2f} | {acc:.3f} |"
        )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--head", type=Path, default=Path("modelbuild/artifacts/complexity_head.onnx"))
    ap.add_argument("--models", type=Path, default=Path("models"))
    args = ap.parse_args()

    ds = data.load()
    held_all = data.heldout_mask(ds.texts)
    meta_path = args.head.with_suffix(".labels.json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    excluded = meta.get("excluded_subjects", [])
    sess = head_session(args.head)
    held_texts = [t for t, h in zip(ds.texts, held_all) if h]
    tok = TextTokenizer(args.models / "tokenizer.json", 256)
    wants_layers = "layer_means" in {i.name for i in sess.get_inputs()}
    scores_by_encoder: dict[str, np.ndarray] = {}  # over all held-out rows
    for enc in ("encoder.onnx", "encoder.int8.onnx"):
        path = args.models / enc
        if path.exists():
            # one text per encoder run, as the router embeds a request (batched int8 embeddings differ slightly)
            emb = cached_embeddings(held_texts, path, args.models / "tokenizer.json", batch=1)
            layers = (cached_embeddings(held_texts, path, args.models / "tokenizer.json", batch=1, output="layer_means")
                      if wants_layers else None)
            scores_by_encoder[enc] = sess.run(["probs"], feeds(sess, emb, held_texts, tok, layers))[0][:, 1]

    # (title, rows of the held-out part, subjects left out of the baselines' training statistics)
    subsets: list[tuple[str, np.ndarray, list[str]]] = [("all held-out rows", np.ones(held_all.sum(), bool), [])]
    if excluded:
        keep = ~np.isin(ds.subject[held_all], excluded)
        subsets.append((f"held-out rows without {', '.join(excluded)}", keep, excluded))
    for title, sub, left_out in subsets:
        held = held_all.copy()
        held[held_all] = sub
        tr = ~held_all & ~np.isin(ds.subject, left_out)
        s_ok, l_ok = ds.small_ok[held], ds.large_ok[held]
        sa, la = float(s_ok.mean()), float(l_ok.mean())
        print(f"\n## {title}: {held.sum()} rows, small acc {sa:.3f}, large acc {la:.3f} (95% of large = {0.95 * la:.3f})")
        routers: dict[str, curves.Curve] = {}
        for enc, score in scores_by_encoder.items():
            routers[f"complexity ({enc})"] = curves.curve_from_scores(score[sub], s_ok, l_ok)
        routers["random"] = curves.random_curve(s_ok, l_ok)
        for by in ("error", "gain"):
            order = group_order(ds.category[tr], ds.small_ok[tr], ds.large_ok[tr], by)
            routers[f"category (by {by})"] = curves.curve_from_groups(ds.category[held], order, s_ok, l_ok)
        order = group_order(ds.subject[tr], ds.small_ok[tr], ds.large_ok[tr], "gain")
        routers["subject oracle (true label)"] = curves.curve_from_groups(ds.subject[held], order, s_ok, l_ok)
        print_tables(routers, s_ok, l_ok)
        if "knob_thresholds" in meta and scores_by_encoder:
            enc, score = next(iter(scores_by_encoder.items()))
            print_knobs(meta["knob_thresholds"], score[sub], s_ok, l_ok, enc)

    emb = cached_embeddings(held_texts, args.models / "encoder.onnx", args.models / "tokenizer.json")
    layers = (cached_embeddings(held_texts, args.models / "encoder.onnx", args.models / "tokenizer.json",
                                output="layer_means") if wants_layers else None)
    print("\nadded latency beyond the shared encoder pass (1 thread)\n")
    print("| what | µs per request |")
    print("|---|---|")
    for b in (1, 16):
        print(f"| complexity head, batch {b} | {latency_us(sess, emb, held_texts, tok, b, layers):.1f} |")
    t0 = time.perf_counter()
    for t in held_texts:
        text_features([t])
    print(f"| text_features (not used by this head) | {(time.perf_counter() - t0) / len(held_texts) * 1e6:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
