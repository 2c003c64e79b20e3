"""Train the learned cache-hit verifier and export modelbuild/artifacts/cache_verifier.onnx (+ .labels.json).

Data: ../shared/data/qqp-dev.jsonl.gz split by sha256 of the pair (data.split_of): 50% train,
10% validation, 40% test. Trained on train, model/epoch and thresholds chosen on validation; the
test part is only reported (and by benchmarks/bench_cache_quality.py). Embeddings come from the
shipped encoder (models/encoder.int8.onnx) and are cached under /tmp (the first run embeds ~73k
unique sentences: several minutes on 2 cores). Fixed seeds, 2 threads.

    .venv/bin/python -m modelbuild.cache_verifier.train [--out modelbuild/artifacts]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from modelbuild.cache_verifier import features
from modelbuild.cache_verifier.data import QQP, load_qqp
from modelbuild.cache_verifier.export import to_onnx
from modelbuild.cache_verifier.metrics import best_recall_at_precision, pr
from semrouter.cache.config import CacheConfig
from semrouter.cache.learned_verify import LEX_FEATURES

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parent / "artifacts"
ADV = HERE.parents[1] / "benchmarks" / "data" / "cache_adversarial.jsonl"
PREFILTERS = (0.70, 0.75, 0.78, 0.80, 0.82, 0.85)


def pair_features(u: np.ndarray, v: np.ndarray, lex: np.ndarray) -> np.ndarray:
    """The graph's feature vector (export.py), in numpy: SBERT pair features [u*v, |u-v|, cos], the
    topic (u+v: how noisy 'duplicate' is depends on the subject) and the lexical features."""
    uv = u * v
    return np.concatenate([uv, np.abs(u - v), uv.sum(1, keepdims=True), u + v, lex], axis=1).astype(np.float32)


def fit(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray, eligible_va: np.ndarray,
        hidden: tuple[int, ...], epochs: int, seed: int, lr: float, weight_decay: float, dropout: float,
        select_precision: float) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, float]]:
    """MLP (no hidden layer = logistic regression) on standardised features; the epoch with the lowest
    validation log-loss is kept (recall at `select_precision` is reported)."""
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
    xv = torch.from_numpy(x_va)
    best: tuple[float, float, int, list[tuple[np.ndarray, np.ndarray]]] = (-1.0, float("inf"), -1, [])
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(len(xt))
        for i in range(0, len(order), 128):
            idx = torch.from_numpy(order[i:i + 128])
            loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            logits = net(xv)
            p = torch.softmax(logits, 1)[:, 1].numpy()
            vloss = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(y_va.astype(np.int64))))
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


def adversarial() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(u = new, v = cached, lex, same_answer, veto_ok) of benchmarks/data/cache_adversarial.jsonl: checked, never
    trained or tuned on."""
    from modelbuild.cache_verifier.embed import embed_cached
    from semrouter.cache.config import CacheConfig
    from semrouter.cache.learned_verify import lex_vector

    rows = [json.loads(line) for line in ADV.open()]
    rules = features.rules_verifier()
    ea, eb = embed_cached([r["a"] for r in rows]), embed_cached([r["b"] for r in rows])
    lex = np.stack([lex_vector(rules.signals(r["b"], r["a"])) for r in rows])
    veto = CacheConfig().verifier_veto
    return (eb, ea, lex, np.array([bool(r["same_answer"]) for r in rows]),
            np.array([rules.check(r["b"], r["a"], veto).ok for r in rows]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ARTIFACTS))
    ap.add_argument("--hidden", default="256", help="hidden sizes, comma-separated; '' = logistic regression")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-min-cos", type=float, default=0.0, help="train only on pairs at least this similar")
    ap.add_argument("--precision", type=float, default=0.95, help="validation precision the thresholds aim for")
    ap.add_argument("--no-export", action="store_true")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    hidden = tuple(int(h) for h in args.hidden.split(",") if h.strip())
    t0 = time.perf_counter()
    ps = features.build(load_qqp(), features.rules_verifier(), threads=args.threads)
    print(f"features for {len(ps.y)} pairs in {time.perf_counter() - t0:.0f}s", flush=True)
    tr = ps.take((ps.split == "train") & (ps.cos >= args.train_min_cos))
    va = ps.take(ps.split == "val")
    te = ps.take(ps.split == "test")
    x_tr = pair_features(tr.u, tr.v, tr.lex)
    mean = x_tr.mean(0)
    std = x_tr.std(0) + 1e-4
    norm = lambda ps_: (pair_features(ps_.u, ps_.v, ps_.lex) - mean) / std  # noqa: E731
    xs_tr, xs_va, xs_te = norm(tr), norm(va), norm(te)
    select_prefilter = 0.80
    eligible_va = (va.cos >= select_prefilter) & va.veto_ok
    layers, info = fit(xs_tr, tr.y, xs_va, va.y, eligible_va, hidden, args.epochs, args.seed,
                       args.lr, args.weight_decay, args.dropout, 0.95)
    print(f"trained {hidden or 'logreg'} on {len(tr.y)} pairs in {time.perf_counter() - t0:.0f}s: {info}")
    p_va, p_te = forward(layers, xs_va), forward(layers, xs_te)

    adv_u, adv_v, adv_lex, adv_same, adv_veto = adversarial()
    p_adv = forward(layers, (pair_features(adv_u, adv_v, adv_lex) - mean) / std)
    print(f"per pre-filter: the verifier threshold reaching validation precision >= {args.precision:.0%} with "
          "`verifier: learned` (learned + veto rules); adversarial = checked, never tuned on")
    print(f"{'prefilter':>9} {'thr':>6} {'val P':>6} {'val R':>6} {'test P':>6} {'test R':>6} {'adv FH':>6} "
          f"{'(no veto)':>9} {'para':>6}")
    for c in PREFILTERS:
        t, v = best_recall_at_precision(p_va, (va.cos >= c) & va.veto_ok, va.y, args.precision)
        t_ = pr((te.cos >= c) & te.veto_ok & (p_te >= t), te.y)
        hit = (adv_u * adv_v).sum(1) >= c
        hit &= p_adv >= t
        print(f"{c:9.2f} {t:6.3f} {v.precision:6.1%} {v.recall:6.1%} {t_.precision:6.1%} {t_.recall:6.1%} "
              f"{(hit & adv_veto)[~adv_same].mean():6.1%} {hit[~adv_same].mean():9.1%} "
              f"{(hit & adv_veto)[adv_same].mean():6.1%}")
    shipped = CacheConfig()
    c, t = shipped.similarity_threshold, shipped.verifier_threshold
    v = pr((va.cos >= c) & va.veto_ok & (p_va >= t), va.y)
    t_ = pr((te.cos >= c) & te.veto_ok & (p_te >= t), te.y)
    print(f"shipped (CacheConfig defaults): prefilter {c}, verifier threshold {t}: val P {v.precision:.1%} "
          f"R {v.recall:.1%}; test P {t_.precision:.1%} R {t_.recall:.1%}")
    if args.no_export:
        return
    out = Path(args.out)
    path = out / "cache_verifier.onnx"
    to_onnx(layers, mean, std, ps.u.shape[1], len(LEX_FEATURES), path)
    sidecar = {
        "labels": ["different_answer", "same_answer"],
        "score": "probs[:,1] = P(the cached answer fits the new prompt)",
        "lex_features": list(LEX_FEATURES),
        "inputs": {"u": [None, ps.u.shape[1]], "v": [None, ps.u.shape[1]], "lex": [None, len(LEX_FEATURES)]},
        "encoder": "encoder.int8.onnx",
        "model": {"hidden": list(hidden), "epochs": args.epochs, "best_epoch": info["epoch"], "lr": args.lr,
                  "weight_decay": args.weight_decay, "dropout": args.dropout, "seed": args.seed,
                  "train_min_cos": args.train_min_cos},
        "data": f"{QQP.name}: 50% train / 10% validation / 40% test by sha256 of the sorted pair",
        "train_rows": int(len(tr.y)),
        "shipped": {"similarity_threshold": c, "verifier_threshold": t, "verifier_veto": list(shipped.verifier_veto)},
        "validation": {"precision": round(v.precision, 4), "recall": round(v.recall, 4)},
        "test": {"precision": round(t_.precision, 4), "recall": round(t_.recall, 4)},
    }
    (out / "cache_verifier.labels.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB) in {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
