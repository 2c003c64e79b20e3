"""Train the learned cache-hit verifier on a mix and export modelbuild/artifacts/cache_verifier.onnx (+ .labels.json).

Data (mix.py): qqp-dev, paraphrase-dev (STS in 11 languages, negations, antonym paraphrases) and chat-style
rewrites of real prompts (chatpairs.py), each with train / validation / test parts held out by source or
origin (see mix.py). Trained on train; the epoch, the cosine pre-filter and the verifier threshold are chosen
on validation only; test is printed once, per kind, after the choice (and by benchmarks/bench_cache_quality.py).
Embeddings come from the shipped encoder (models/encoder.int8.onnx) and are cached under /tmp (the first run
embeds ~52k unique texts: ~20 minutes on 2 busy cores, then only new texts). Fixed seeds, 2 threads.

    .venv/bin/python -m modelbuild.cache_verifier.train [--out modelbuild/artifacts] [--no-export] [--val-only]

The shipped `cache_verifier.onnx` is the default invocation. The opt-in `cache_verifier_align.onnx` (sixth
session: token-alignment features, align.py; see benchmarks/RESULTS.md before using it) is

    .venv/bin/python -m modelbuild.cache_verifier.train --align --features compact --hidden 64,64 --epochs 30 \
        --lr 1e-3 --weight-decay 0.01 --dropout 0.1 --name cache_verifier_align

(alignment features: one encoder run per unique text of the pairs that can be served, cached under
build/cache_verifier/; ~9 minutes on 2 busy cores the first time). Its sidecar's
`chosen_on_validation.verifier_threshold_other_languages` (0.76, the cache2 rule on validation STS pairs) and
`use` note were added by hand after training.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from modelbuild.cache_verifier import features
from modelbuild.cache_verifier.align_cache import align_cached
from modelbuild.cache_verifier.embed import embed_cached
from modelbuild.cache_verifier.export import to_onnx
from modelbuild.cache_verifier.metrics import best_recall_at_precision, pr
from modelbuild.cache_verifier.mix import MixPair, load_mix
from semrouter.cache.align import ALIGN_FEATURES, perfect_alignment
from semrouter.cache.config import CacheConfig
from semrouter.cache.equivalent import equivalent
from semrouter.cache.learned_verify import LEX_FEATURES, lex_vector
from semrouter.cache.verbatim import verbatim_differs

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parent / "artifacts"
PREFILTERS = (0.55, 0.60, 0.65, 0.70, 0.75, 0.80)
THRESHOLDS = tuple(round(x, 2) for x in np.arange(0.30, 0.99, 0.02))
MAX_VAL_FALSE_HITS = 0.04  # on every validation near-miss kind with at least MIN_GROUP pairs
MIN_GROUP = 30


def pair_features(u: np.ndarray, v: np.ndarray, lex: np.ndarray, align: np.ndarray | None = None,
                  compact: bool = False) -> np.ndarray:
    """The graph's feature vector (export.py), in numpy: the SBERT pair features [u*v, |u-v|, cos] (`compact`:
    the cosine only), the lexical features and (when given) the token-alignment features [B, len(ALIGN_FEATURES)].
    (No topic term u+v: it let the model learn which subjects qqp's labellers call duplicates, which does not
    carry over to other sources; the compact set drops the per-dimension terms for the same reason.)"""
    uv = u * v
    cos = uv.sum(1, keepdims=True)
    parts = ([cos] if compact else [uv, np.abs(u - v), cos]) + [lex] + ([] if align is None else [align])
    return np.concatenate(parts, axis=1).astype(np.float32)


class Mixed:
    """Features of every pair of the mix: u = new prompt (b), v = cached prompt (a)."""

    def __init__(self, pairs: list[MixPair], threads: int = 2, align: bool = False,
                 veto: tuple[str, ...] | None = None) -> None:
        """`veto`: the rule families behind `veto_ok` (default: CacheConfig's verifier_veto)."""
        rules = features.rules_verifier()
        veto = CacheConfig().verifier_veto if veto is None else veto
        texts = [p.a for p in pairs] + [p.b for p in pairs]
        emb = embed_cached(texts, threads=threads, progress=True)
        n = len(pairs)
        self.u, self.v = emb[n:], emb[:n]
        self.lex = np.stack([lex_vector(rules.signals(p.b, p.a)) for p in pairs])
        self.veto_ok = np.array([rules.check(p.b, p.a, veto).ok and not verbatim_differs(p.b, p.a) for p in pairs])
        # answer-neutral rewordings: served without the learned score
        self.equiv = np.array([equivalent(p.b, p.a, rules.common_words) for p in pairs])
        self.b = np.array([p.b for p in pairs], dtype=object)  # the new prompts' text
        self.y = np.array([p.y for p in pairs])
        self.kind = np.array([p.kind for p in pairs])
        self.part = np.array([p.part for p in pairs])
        self.cos = (self.u * self.v).sum(1)
        self.align: np.ndarray | None = None
        if align:  # token alignment only where a pair can be served (else the perfect-alignment default)
            reach = np.nonzero(self.veto_ok & (self.cos >= min(PREFILTERS)))[0]
            self.align = np.tile(perfect_alignment(), (n, 1))
            self.align[reach] = align_cached([(pairs[i].a, pairs[i].b) for i in reach], threads=threads)


def balanced_weights(kinds: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-pair weights giving every (kind, label) group the same total weight (within each part the groups'
    sizes differ up to 30x: qqp would otherwise dominate), normalised to mean 1."""
    keys = np.char.add(kinds.astype(str), np.where(y, ":1", ":0"))
    _, inv, counts = np.unique(keys, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inv]
    return w / w.mean()


def kind_groups(kinds: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Report groups: each kind split into its positives (hit rate) and negatives (false-hit rate)."""
    out = {}
    for k in sorted(set(kinds)):
        for label, name in ((True, "same"), (False, "diff")):
            m = (kinds == k) & (y == label)
            if m.sum() >= 10:
                out[f"{k}:{name}"] = m
    return out


def choose(cos: np.ndarray, score: np.ndarray, veto_ok: np.ndarray, equiv: np.ndarray, y: np.ndarray,
           kinds: np.ndarray) -> tuple[float, float, float]:
    """(prefilter c, verifier threshold t, objective) on validation, for the shipped decision (cos >= c, vetoes
    pass, learned >= t or an answer-neutral rewording): the false-hit rate of every "diff" group of at least
    MIN_GROUP pairs except qqp's (its labels are noisy: many "different" pairs have the same answer) <=
    MAX_VAL_FALSE_HITS; maximise the mean hit rate over the "same" groups. qqp precision is reported only."""
    groups = kind_groups(kinds, y)
    diff = [m for g, m in groups.items() if g.endswith(":diff") and not g.startswith("qqp") and m.sum() >= MIN_GROUP]
    same = [m for g, m in groups.items() if g.endswith(":same")]
    best = (0.80, 0.90, -1.0)
    for c in PREFILTERS:
        for t in THRESHOLDS:
            served = (cos >= c) & veto_ok & ((score >= t) | equiv)
            if max(served[m].mean() for m in diff) > MAX_VAL_FALSE_HITS:
                continue
            obj = float(np.mean([served[m].mean() for m in same]))
            if obj > best[2]:
                best = (c, t, obj)
    return best


def report(name: str, served: np.ndarray, y: np.ndarray, kinds: np.ndarray, cos: np.ndarray) -> None:
    print(f"\n{name}: per kind (same = hit rate, diff = false-hit rate)")
    print(f"{'kind':>28} {'pairs':>6} {'mean cos':>8} {'served':>7}")
    for g, m in kind_groups(kinds, y).items():
        print(f"{g:>28} {m.sum():6d} {cos[m].mean():8.3f} {served[m].mean():7.1%}")
    q = kinds == "qqp"
    r = pr(served[q], y[q])
    print(f"{'qqp precision / recall':>28} {q.sum():6d} {'':>8} {r.precision:7.1%} / {r.recall:.1%}")


def fit(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray, eligible_va: np.ndarray,
        hidden: tuple[int, ...], epochs: int, seed: int, lr: float, weight_decay: float, dropout: float,
        select_precision: float, w_tr: np.ndarray | None = None, w_va: np.ndarray | None = None,
        ) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, float]]:
    """MLP (no hidden layer = logistic regression) on standardised features; `w_*`: per-pair weights
    (default 1); the epoch with the lowest weighted validation log-loss is kept (recall at
    `select_precision` is reported)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dims = [x_tr.shape[1], *hidden, 2]
    mods: list[torch.nn.Module] = []
    for i in range(len(dims) - 1):
        mods.append(torch.nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            mods += [torch.nn.ReLU(), torch.nn.Dropout(dropout)]
    net = torch.nn.Sequential(*mods)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr.astype(np.int64))
    wt = torch.from_numpy((np.ones(len(y_tr)) if w_tr is None else w_tr).astype(np.float32))
    wv = torch.from_numpy((np.ones(len(y_va)) if w_va is None else w_va).astype(np.float32))
    xv = torch.from_numpy(x_va)
    best: tuple[float, float, int, list[tuple[np.ndarray, np.ndarray]]] = (-1.0, float("inf"), -1, [])
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(len(xt))
        for i in range(0, len(order), 128):
            idx = torch.from_numpy(order[i:i + 128])
            ce = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx], reduction="none")
            loss = (ce * wt[idx]).sum() / wt[idx].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            logits = net(xv)
            p = torch.softmax(logits, 1)[:, 1].numpy()
            ce = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y_va.astype(np.int64)), reduction="none")
            vloss = float((ce * wv).sum() / wv.sum())
        _, at = best_recall_at_precision(p, eligible_va, y_va, select_precision)
        if vloss < best[1]:
            layers = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy())
                      for m in net if isinstance(m, torch.nn.Linear)]
            best = (at.recall, vloss, epoch, layers)
    return best[3], {"val_recall_at_select_precision": round(best[0], 4), "val_logloss": round(best[1], 4),
                     "epoch": best[2]}


def forward(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    h = x
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    h = h - h.max(1, keepdims=True)
    e = np.exp(h)
    return (e[:, 1] / e.sum(1)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ARTIFACTS))
    ap.add_argument("--hidden", default="256", help="hidden sizes, comma-separated; '' = logistic regression")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--features", choices=("compact", "full"), default="full",
                    help="full = [u*v, |u-v|, cos, lex (, align)] (the shipped model); compact = [cos, lex (, align)]")
    ap.add_argument("--name", default="cache_verifier", help="the artifact's file stem")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--align", action="store_true",
                    help="add the token-alignment features (semrouter/cache/align.py; the model gets an align input)")
    ap.add_argument("--val-only", action="store_true", help="report validation only (exploration: test unread)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    hidden = tuple(int(h) for h in args.hidden.split(",") if h.strip())
    t0 = time.perf_counter()
    mix = Mixed(load_mix(args.seed), args.threads, align=args.align)
    print(f"features for {len(mix.y)} pairs in {time.perf_counter() - t0:.0f}s", flush=True)
    tr, va, te = (mix.part == p for p in ("train", "val", "test"))
    compact = args.features == "compact"
    x_all = pair_features(mix.u, mix.v, mix.lex, mix.align, compact)
    mean = x_all[tr].mean(0)
    std = x_all[tr].std(0) + 1e-4
    xs = (x_all - mean) / std
    w = balanced_weights(mix.kind, mix.y)
    # trained on what reaches the model: pairs the vetoes pass, above the lowest pre-filter considered
    reach = mix.veto_ok & (mix.cos >= min(PREFILTERS))
    fit_tr, fit_va = tr & reach, va & reach
    layers, info = fit(xs[fit_tr], mix.y[fit_tr], xs[fit_va], mix.y[fit_va], np.ones(int(fit_va.sum()), bool),
                       hidden, args.epochs, args.seed, args.lr, args.weight_decay, args.dropout, 0.95, w[fit_tr],
                       w[fit_va])
    print(f"trained {hidden or 'logreg'} on {int(tr.sum())} pairs in {time.perf_counter() - t0:.0f}s: {info}")
    score = forward(layers, xs)
    c, t, obj = choose(mix.cos[va], score[va], mix.veto_ok[va], mix.equiv[va], mix.y[va], mix.kind[va])
    print(f"chosen on validation: similarity_threshold {c}, verifier_threshold {t} "
          f"(mean paraphrase hit rate {obj:.1%})")
    served = (mix.cos >= c) & mix.veto_ok & ((score >= t) | mix.equiv)
    report("validation (chosen on)", served[va], mix.y[va], mix.kind[va], mix.cos[va])
    if not args.val_only:
        report("TEST (held out; read after the choice)", served[te], mix.y[te], mix.kind[te], mix.cos[te])
        q = te & (mix.kind == "qqp")
        thr, r = best_recall_at_precision(score[q], (mix.cos[q] >= c) & mix.veto_ok[q], mix.y[q], 0.95)
        print(f"qqp test, threshold picked on test (optimistic): recall {r.recall:.1%} at precision {r.precision:.1%} "
              f"(verifier >= {thr:.3f})")
    if args.no_export:
        return
    out = Path(args.out)
    path = out / f"{args.name}.onnx"
    n_align = 0 if mix.align is None else len(ALIGN_FEATURES)
    to_onnx(layers, mean, std, mix.u.shape[1], len(LEX_FEATURES), path, n_align, compact)
    sidecar = {
        "labels": ["different_answer", "same_answer"],
        "score": "probs[:,1] = P(the cached answer fits the new prompt)",
        "lex_features": list(LEX_FEATURES),
        **({"align_features": list(ALIGN_FEATURES)} if n_align else {}),
        "inputs": {"u": [None, mix.u.shape[1]], "v": [None, mix.u.shape[1]], "lex": [None, len(LEX_FEATURES)],
                   **({"align": [None, n_align]} if n_align else {})},
        "encoder": "encoder.int8.onnx",
        "model": {"features": args.features, "hidden": list(hidden), "epochs": args.epochs,
                  "best_epoch": info["epoch"], "lr": args.lr, "weight_decay": args.weight_decay,
                  "dropout": args.dropout, "seed": args.seed},
        "data": "mix.py: qqp-dev + paraphrase-dev + chat rewrites (chatpairs.py); held out by source/origin",
        "train_rows": int(fit_tr.sum()),
        "chosen_on_validation": {"similarity_threshold": c, "verifier_threshold": t,
                                 "max_false_hits_per_kind": MAX_VAL_FALSE_HITS},
    }
    (out / f"{args.name}.labels.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB) in {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
