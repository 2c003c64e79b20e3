"""A per-category log-prior correction of the routed category probabilities, fitted on the validation slice.

    python -m modelbuild.category_bias          (after `python -m modelbuild.category_ensemble`: reads its saved
                                                 probabilities under build/category-ensemble/, trains nothing)

The category head was trained on a mix whose categories are far from equal in number (MMLU has ten times more law
than engineering questions), and its probabilities lean to the frequent ones; "stratified" accuracy (the mean of
the per-category accuracies: every category an equal share) pays for that lean. The correction is a vector `bias`
[14] of log-odds added to every prompt's category probabilities after the second opinion:

    p' = softmax(log p + bias)

(semrouter/signals/onnx/multilingual.apply_category_bias; `signals.classifier.category_bias`). Candidates, each
fitted on the validation slice of category_ensemble's pass 1 (the 880 rows neither the MiniLM nor the e5 head
trained on) and nowhere else:
- `prior`: bias = -alpha * log(share of the category among the MiniLM head's training rows), one number alpha
  (grid 0..1) by the validation slice's stratified accuracy;
- `free`: 14 free biases minimising the class-balanced NLL of the validation slice (each row weighted by
  1 / its category's count there) + `l2` * |bias|^2 (l2 on a grid, by the slice's stratified accuracy);
The rule fixed before any held-out number was read: take the candidate with the best validation stratified
accuracy whose validation accuracy is at most 0.5 point under the uncorrected one; none if no candidate gains
0.5 point of validation stratified accuracy. The chosen bias is applied unchanged to pass 2 (within source).
Prints and writes build/category-ensemble/bias.json: per part (both passes), per source and per category, accuracy,
stratified accuracy, ECE and confident-and-wrong at 0.5, before and after.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from modelbuild.category_data import LABELS
from modelbuild.category_ensemble import OUT, fuse
from modelbuild.heads import ece, softmax

ALPHAS = tuple(round(a, 2) for a in np.arange(0.0, 1.01, 0.05))
L2S = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def apply_bias(p: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """[N,K] softmax(log p + bias)."""
    return softmax(np.log(p + 1e-12) + bias[None, :])


def stratified(p: np.ndarray, y: np.ndarray) -> float:
    """Mean over the categories present in `y` of the accuracy of argmax `p` [N,K] on that category's rows."""
    pred = p.argmax(1)
    return float(np.mean([(pred[y == k] == k).mean() for k in range(p.shape[1]) if (y == k).any()]))


def fit_free(p: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """[K] biases minimising the class-balanced NLL of softmax(log p + bias) on (p, y) + l2 |bias|^2 (L-BFGS)."""
    from scipy.optimize import minimize

    k = p.shape[1]
    counts = np.bincount(y, minlength=k).astype(np.float64)
    w = np.where(counts[y] > 0, 1.0 / np.maximum(counts[y], 1.0), 0.0)
    w = w / w.sum()
    lp = np.log(p + 1e-12)
    onehot = np.eye(k)[y]

    def f(b: np.ndarray) -> tuple[float, np.ndarray]:
        q = softmax(lp + b[None, :])
        loss = -float(np.sum(w * np.log(q[np.arange(len(y)), y] + 1e-12))) + l2 * float(b @ b)
        grad = (w[:, None] * (q - onehot)).sum(0) + 2 * l2 * b
        return loss, grad

    b = minimize(f, np.zeros(k), jac=True, method="L-BFGS-B").x
    return (b - b.mean()).astype(np.float64)


def _part(p: np.ndarray, y: np.ndarray, src: np.ndarray | None = None) -> dict[str, object]:
    pred = p.argmax(1)
    conf = p.max(1) >= 0.5
    out: dict[str, object] = {
        "n": len(y), "accuracy": round(float((pred == y).mean()), 4), "stratified": round(stratified(p, y), 4),
        "ece": round(ece(p, y), 4), "confident": round(float(conf.mean()), 4),
        "confident_wrong": round(float((conf & (pred != y)).mean()), 4),
        "per_category": {LABELS[k]: [round(float((pred[y == k] == k).mean()), 3), int((y == k).sum())]
                         for k in range(len(LABELS)) if (y == k).any()}}
    if src is not None:
        out["per_source"] = {s: [round(float((pred[src == s] == y[src == s]).mean()), 3), int((src == s).sum())]
                             for s in sorted(set(src.tolist()))}
    return out


def japanese(pv: np.ndarray, yv: np.ndarray, pt: np.ndarray, yt: np.ndarray) -> dict[str, object]:
    """The Japanese routing threshold of pass 1's e5 head (never trained on the validation or test rows) for each
    target confident-and-wrong share of the validation rows (train_e5_category.choose_threshold), and what it
    gives on the held-out (within-source) rows: confident share, accuracy when confident, confident-and-wrong."""
    from modelbuild.category_ensemble import _conf
    from modelbuild.train_e5_category import choose_threshold

    out: dict[str, object] = {"test_accuracy": round(float((pt.argmax(1) == yt).mean()), 4), "val_n": len(yv),
                              "test_n": len(yt)}
    for tgt in (0.05, 0.04, 0.035, 0.03):
        t = choose_threshold(pv, yv, tgt)
        out[f"target_{tgt}"] = {"threshold": t, "val": _conf(pv, yv, t), "test": _conf(pt, yt, t)}
        print(f"japanese target {tgt}: threshold {t}  val {out[f'target_{tgt}']['val']}  "  # type: ignore[index]
              f"test {out[f'target_{tgt}']['test']}")  # type: ignore[index]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gate", type=float, default=0.7)
    ap.add_argument("--weight", type=float, default=0.5)
    ap.add_argument("--temperature", type=float, default=1.514)
    ap.add_argument("--train-shares", default=None, help="JSON [14] category shares of the head's training rows "
                    "(default: computed from category_data.load_mix)")
    args = ap.parse_args(argv)
    if args.train_shares:
        shares = np.array(json.loads(args.train_shares), np.float64)
    else:
        from modelbuild.category_data import load_mix
        from modelbuild.train_category import MMLU

        train = load_mix(MMLU).train
        shares = np.bincount([LABELS.index(r["category"]) for r in train], minlength=len(LABELS)) / len(train)
    s1 = np.load(OUT / "by_source.npz")
    s2 = np.load(OUT / "within_source.npz") if (OUT / "within_source.npz").is_file() else {}

    def fused(z, name: str) -> np.ndarray:  # type: ignore[no-untyped-def]
        return fuse(z[f"{name}_pm"], z[f"{name}_pe"], args.gate, args.weight, args.temperature)

    pv, yv = fused(s1, "validation"), s1["validation_y"]
    base_acc, base_strat = float((pv.argmax(1) == yv).mean()), stratified(pv, yv)
    cands: list[tuple[str, np.ndarray]] = [("none", np.zeros(len(LABELS)))]
    cands += [(f"prior alpha={a}", -a * np.log(shares + 1e-6)) for a in ALPHAS[1:]]
    cands += [(f"free l2={lam}", fit_free(pv, yv, lam)) for lam in L2S]
    rows = []
    for name, b in cands:
        q = apply_bias(pv, b)
        rows.append((name, float((q.argmax(1) == yv).mean()), stratified(q, yv), b))
        print(f"validation {name:18s} accuracy {rows[-1][1]:.4f} stratified {rows[-1][2]:.4f}")
    ok = [r for r in rows if r[1] >= base_acc - 0.005]
    best = max(ok, key=lambda r: r[2])
    if best[2] < base_strat + 0.005:
        best = rows[0]
    print(f"chosen on validation: {best[0]} (accuracy {base_acc:.4f} -> {best[1]:.4f}, stratified {base_strat:.4f} "
          f"-> {best[2]:.4f})\nbias: {dict(zip(LABELS, np.round(best[3], 3).tolist(), strict=True))}")
    bias = best[3]
    report: dict[str, object] = {"chosen": best[0], "bias": dict(zip(LABELS, np.round(bias, 4).tolist(), strict=True)),
                                 "validation_candidates": [[r[0], round(r[1], 4), round(r[2], 4)] for r in rows],
                                 "train_shares": dict(zip(LABELS, np.round(shares, 4).tolist(), strict=True))}
    for pname, z, parts in (("by_source", s1, ("validation", "mmlu", "pro", "chat", "natural")),
                            ("within_source", s2, ("all_within", "mmlu_within", "pro_within", "chat_within",
                                                   "natural_within"))):
        for part in parts:
            if f"{part}_pm" not in z:
                continue
            p, y = fused(z, part), z[f"{part}_y"]
            src = z[f"{part}_source"] if f"{part}_source" in z else None
            before, after = _part(p, y, src), _part(apply_bias(p, bias), y, src)
            report[f"{pname}/{part}"] = {"before": before, "after": after}
            print(f"{pname:13s} {part:15s} n={len(y):5d} acc {before['accuracy']:.4f} -> {after['accuracy']:.4f}  "
                  f"strat {before['stratified']:.4f} -> {after['stratified']:.4f}  ece {before['ece']:.3f} -> "
                  f"{after['ece']:.3f}  cw {before['confident_wrong']:.3f} -> {after['confident_wrong']:.3f}")
    if "ja_val_pe" in s1:
        report["japanese"] = japanese(s1["ja_val_pe"], s1["ja_val_y"], s1["ja_test_pe"], s1["ja_test_y"])
    (OUT / "bias.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {OUT / 'bias.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
