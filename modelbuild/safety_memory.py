"""An exemplar memory for the safety labels, measured against the shipped head on train_jailbreak's folds.

    python -m modelbuild.safety_memory --split group   # within-origin (near-duplicate groups held out)
    python -m modelbuild.safety_memory --split origin  # by origin (whole origin families held out)
    python -m modelbuild.safety_memory --report        # both splits' thresholds (pick_joint) and tables
    python -m modelbuild.safety_memory --final         # head + memory on every row, eval-only sets

Attacks of one origin share templates (jailbreak families, BIPIA attack sentences), so the views the head
already scores (whole row, 32/128-token windows, overflow rows, sentence segments encoded alone) may be matched
against the training rows' views directly. Per fold, the memory holds (never text, only embeddings [384]):

- every view of every training row whose jailbreak and injection targets are 0 (benign, look-alikes, harmful
  requests, the always-trained extras) as class "none";
- of every jailbreak / injection training row, its *witness* views: those the fold's own head scores >= 0.5 for
  the row's label, and always its highest-scoring view (the rest of an attack row is unlabelled: the clean part
  of an attacked document is not stored as an attack, so its clean twin is not pulled towards one).

A held-out view's `k` nearest memory views by cosine vote with weights softmax(cos / tau) (as
modelbuild/category_memory.py), times (0.99 + 0.01 x the nearest neighbour's cosine) so that unanimous votes (1.0)
are ranked by closeness; a prompt's memory score per label is the max over its views. The memory is fused
with the head's fused score (train_jailbreak: embedding branch + lexical branch) by `FUSIONS`; thresholds by the
shipped rule (train_jailbreak.pick_joint on both splits' held-out scores). The head is retrained here on the same
folds (the shipped recipe), so both columns of every table read the same rows scored by models that never saw them.
Scores are saved under build/safety-cache/memory-<split>.npz. Measured in benchmarks/RESULTS.md ("Ninth session
(`safety10`)"); nothing here is shipped: at 2 bits a dimension the ~110,000 views of a fold are ~10 MB (over the
5 MB limit), and the best fusion (`max-jailbreak`) costs injection recall.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from modelbuild import train_jailbreak as tj
from modelbuild.heads import ROOT

K = 20
TAU = 0.05
WITNESS = 0.5  # a view of an attack row is stored as an attack when the fold's head scores it at least this
CLASSES = ("none", "jailbreak", "injection")
DIM = 384


def view_probs(model, bags: list[np.ndarray]) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """Per bag the head's per-view probabilities [W_i,3]."""
    import torch

    with torch.no_grad():
        x = torch.from_numpy(np.concatenate(bags).astype(np.float32))
        p = torch.sigmoid(model(x * 10.0)).numpy()
    cuts = np.cumsum([0] + [len(b) for b in bags])
    return [p[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x[:, :DIM], np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def memory_rows(bags: list[np.ndarray], labels: list[str], probs: list[np.ndarray],
                witness: float = WITNESS) -> tuple[np.ndarray, np.ndarray]:
    """(unit views [M,384], class index [M]) of the training bags (see the module docstring)."""
    xs, cs = [], []
    for b, lab, p in zip(bags, labels, probs, strict=True):
        if lab in ("jailbreak", "injection"):
            col = tj.LABELS.index(lab)
            keep = p[:, col] >= witness
            keep[int(np.argmax(p[:, col]))] = True
            xs.append(b[keep])
            cs.append(np.full(int(keep.sum()), CLASSES.index(lab)))
        else:
            xs.append(b)
            cs.append(np.zeros(len(b), np.int64))
    return unit(np.concatenate(xs)), np.concatenate(cs).astype(np.int64)


K_SAVED = 50  # neighbours kept per view, so k and tau can be varied from the saved file


def neighbours(mem: np.ndarray, cls: np.ndarray, bags: list[np.ndarray], k: int = K_SAVED,
               chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Every view's `k` nearest memory views by cosine, best first: (cosines float16 [V,k], classes uint8 [V,k])."""
    q = unit(np.concatenate(bags))
    sims = np.zeros((len(q), k), np.float16)
    cl = np.zeros((len(q), k), np.uint8)
    for i in range(0, len(q), chunk):
        s = q[i : i + chunk] @ mem.T
        idx = np.argpartition(-s, k, axis=1)[:, :k]
        top = np.take_along_axis(s, idx, 1)
        o = np.argsort(-top, axis=1)
        sims[i : i + chunk] = np.take_along_axis(top, o, 1)
        cl[i : i + chunk] = cls[np.take_along_axis(idx, o, 1)]
    return sims, cl


def vote_from(sims: np.ndarray, cl: np.ndarray, sizes: np.ndarray, k: int = K, tau: float = TAU) -> np.ndarray:
    """Per bag (`sizes` [N] views each) the max over its views of the k-nearest vote for jailbreak and injection
    [N,2]: weights softmax(cos / tau) over the k nearest."""
    top = sims[:, :k].astype(np.float32)
    w = np.exp((top - top[:, :1]) / tau)
    w /= w.sum(1, keepdims=True)
    # ties broken by closeness: a unanimous vote (1.0 in float) is ranked by its nearest neighbour's cosine
    out = np.stack([(w * (cl[:, :k] == c)).sum(1) for c in (1, 2)], axis=1) * (0.99 + 0.01 * top[:, :1])
    cuts = np.cumsum(np.concatenate([[0], sizes]))
    return np.maximum.reduceat(out, cuts[:-1], axis=0) if len(out) else np.zeros((len(sizes), 2))


def vote(mem: np.ndarray, cls: np.ndarray, bags: list[np.ndarray], k: int = K, tau: float = TAU) -> np.ndarray:
    """Per bag the max over its views of the k-nearest vote for jailbreak and injection [N,2]."""
    sims, cl = neighbours(mem, cls, bags, k)
    return vote_from(sims, cl, np.array([len(b) for b in bags]), k, tau)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sig(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


FUSIONS = {  # head [N,3] (fused with the lexical branch) and memory vote [N,2] -> scores [N,3]
    "head": lambda h, v: h,
    "max": lambda h, v: np.concatenate([np.maximum(h[:, :2], v), h[:, 2:]], axis=1),
    "mean-logit": lambda h, v: np.concatenate([_sig(0.5 * (_logit(h[:, :2]) + _logit(0.98 * v + 0.01))), h[:, 2:]],
                                              axis=1),
    "memory": lambda h, v: np.concatenate([v, h[:, 2:]], axis=1),
    "max-jailbreak": lambda h, v: np.concatenate([np.maximum(h[:, :1], v[:, :1]), h[:, 1:]], axis=1),
}


def prepare(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    rows, ev = tj.load(args.mmlu_sample)
    texts = [r["text"] for r in rows + ev]
    t0 = time.time()
    bags = tj.views(texts, args.models)
    bags = tj.with_positions(bags, texts, args.models)
    bags = tj.with_segments(bags, texts, args.models, tj.SEGMENTS)
    print(f"views {sum(len(b) for b in bags)} for {len(bags)} texts ({time.time() - t0:.0f} s)", flush=True)
    y, m, w = tj.label_arrays(rows)
    return rows, ev, bags, y, m, w


def cross_validate(args: argparse.Namespace) -> None:
    rows, ev, bags, y, m, w = prepare(args)
    tr_bags = bags[: len(rows)]
    if args.split == "group":
        rows = [{**r, "fold": tj.near_duplicate_fold(r["text"]) if r["fold"] >= 0 else -1} for r in rows]
    fold = np.array([r["fold"] for r in rows])
    labels = [r["label"] for r in rows]
    oof = np.zeros((len(rows), 3))
    sizes = np.array([len(b) for b in tr_bags])
    starts = np.concatenate([[0], np.cumsum(sizes)])
    sims = np.zeros((int(sizes.sum()), K_SAVED), np.float16)
    cl = np.zeros((int(sizes.sum()), K_SAVED), np.uint8)
    for k in range(tj.FOLDS):
        t0 = time.time()
        tr, te = np.where(fold != k)[0], np.where(fold == k)[0]
        model = tj.train([tr_bags[i] for i in tr], y[tr], m[tr], w[tr], args.epochs, args.hidden)
        oof[te] = tj.score(model, [tr_bags[i] for i in te])
        probs = view_probs(model, [tr_bags[i] for i in tr])
        mem, cls = memory_rows([tr_bags[i] for i in tr], [labels[i] for i in tr], probs, args.witness)
        s_te, c_te = neighbours(mem, cls, [tr_bags[i] for i in te])
        at = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in te])
        sims[at], cl[at] = s_te, c_te
        print(f"fold {k}: memory {len(mem)} views ({np.bincount(cls, minlength=3).tolist()}), "
              f"{time.time() - t0:.0f} s", flush=True)
    lex = tj._Lex(rows, ev, args.models, y, w, tj.SEGMENTS)
    fused = lex.held_out(oof, fold)
    tj.CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(tj.CACHE / f"memory-{args.split}{args.tag}.npz", head=fused, sims=sims, cl=cl, sizes=sizes, fold=fold,
             labels=np.array(labels), origins=np.array([r["origin"] for r in rows]))
    print(f"wrote {tj.CACHE}/memory-{args.split}{args.tag}.npz")


def _load(path: Path, k: int, tau: float) -> dict[str, np.ndarray]:
    z = np.load(path)
    keep = z["fold"] >= 0
    out = {key: z[key][keep] for key in ("head", "labels", "origins")}
    out["memory"] = vote_from(z["sims"], z["cl"], z["sizes"], k, tau)[keep]
    return out


def report(args: argparse.Namespace) -> None:
    g = _load(tj.CACHE / f"memory-group{args.tag}.npz", args.k, args.tau)
    o = _load(tj.CACHE / f"memory-origin{args.tag}.npz", args.k, args.tau)

    def held(d: dict, p: np.ndarray) -> dict[str, np.ndarray]:
        return {"benign": p[d["labels"] == "benign"], "lookalike": p[d["labels"] == "benign_lookalike"]}

    def or_rule(h: np.ndarray, v: np.ndarray) -> np.ndarray:
        """max(head, memory mapped onto the head's scale): the memory's benign quantile -> the head's score at the
        same benign quantile (both splits' benign rows pooled), so one threshold reads either branch at the same
        benign share: refused when the head OR the memory is past it."""
        out = h.copy()
        for c in (0, 1):
            hb = np.sort(np.concatenate([g["head"][g["labels"] == "benign", c], o["head"][o["labels"] == "benign", c]]))
            mb = np.sort(np.concatenate([g["memory"][g["labels"] == "benign", c],
                                         o["memory"][o["labels"] == "benign", c]]))
            q = np.searchsorted(mb, v[:, c], side="right") / len(mb)
            out[:, c] = np.maximum(h[:, c], np.quantile(hb, np.clip(q, 0, 1)) * (q < 1) + (q >= 1) * (
                1 - 1e-7 + 1e-7 * v[:, c]))
        return out

    FUSIONS["or"] = or_rule
    per: dict[str, dict] = {}
    for name, f in FUSIONS.items():
        pg, po = f(g["head"], g["memory"]), f(o["head"], o["memory"])
        tj_, ti = tj.pick_joint([held(g, pg), held(o, po)], 0.01, 0.05,
                                {"jailbreak": pg[g["labels"] == "jailbreak"], "injection": pg[g["labels"] == "injection"]})
        thr = {"jailbreak": tj_, "injection": ti, "harmful": 1.0}
        summ = []
        for d, p in ((o, po), (g, pg)):
            _, s = tj.table([{"label": a, "origin": b} for a, b in zip(d["labels"], d["origins"], strict=True)], p, thr)
            summ.append(s)
        per[name] = {"thr": thr, "summ": summ}
        print(f"{name:11s} joint {tj_:.4f} / {ti:.4f}   by origin " +
              " / ".join(f"{100 * summ[0]['ALL/' + lab]:.1f}" for lab in ("jailbreak", "injection", "benign",
                                                                           "benign_lookalike")) +
              "   within-origin " + " / ".join(f"{100 * summ[1]['ALL/' + lab]:.1f}" for lab in
                                             ("jailbreak", "injection", "benign", "benign_lookalike")))
    base = per["head"]["summ"]
    for name in FUSIONS:
        if name == "head":
            continue
        print(f"\nper origin, head -> {name} (each at its joint thresholds)")
        print(f"{'origin':30s} {'label':17s} {'n':>5s}   by origin        within-origin")
        for origin in sorted(base[1]):
            if origin.startswith("ALL/"):
                continue
            b0, b1 = base[0].get(origin), base[1][origin]
            n0, n1 = per[name]["summ"][0].get(origin), per[name]["summ"][1][origin]
            col = b1["label"] if b1["label"] in ("jailbreak", "injection") else "either"
            bo = f"{100 * b0[col]:5.1f}% -> {100 * n0[col]:5.1f}%" if b0 else ""
            print(f"{origin:30s} {b1['label']:17s} {b1['n']:5d}   {bo:16s} {100 * b1[col]:5.1f}% -> "
                  f"{100 * n1[col]:5.1f}%")


def final(args: argparse.Namespace) -> None:
    """Head + memory trained on every row; the eval-only sets at the thresholds given (`--thr` per fusion)."""
    rows, ev, bags, y, m, w = prepare(args)
    tr_bags, ev_bags = bags[: len(rows)], bags[len(rows) :]
    model = tj.train(tr_bags, y, m, w, args.epochs, args.hidden)
    lex = tj._Lex(rows, ev, args.models, y, w, tj.SEGMENTS)
    branch = lex.fit(np.arange(len(rows)))
    head = lex.fused(tj.score(model, ev_bags), branch.bag_max(lex.vids[len(rows) :]))
    mem, cls = memory_rows(tr_bags, [r["label"] for r in rows], view_probs(model, tr_bags), args.witness)
    v = vote(mem, cls, ev_bags, args.k, args.tau)
    print(f"memory on every row: {len(mem)} views ({np.bincount(cls, minlength=3).tolist()})")
    np.savez(tj.CACHE / f"memory-final{args.tag}.npz", head=head, memory=v, labels=np.array([r["label"] for r in ev]),
             origins=np.array([r["origin"] for r in ev]))
    for spec in args.thr:
        name, a, b = spec.split(":")
        p = FUSIONS[name](head, v)
        lines, _ = tj.table(ev, p, {"jailbreak": float(a), "injection": float(b), "harmful": 1.0})
        print(f"\neval-only sets, {name} at {a} / {b}")
        print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="measure an exemplar memory for the safety labels")
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--mmlu-sample", type=int, default=800)
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--split", choices=("origin", "group"), default="group")
    ap.add_argument("--k", type=int, default=K)
    ap.add_argument("--tau", type=float, default=TAU)
    ap.add_argument("--witness", type=float, default=WITNESS)
    ap.add_argument("--tag", default="")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--final", action="store_true")
    ap.add_argument("--thr", nargs="*", default=[], help="fusion:jailbreak:injection thresholds for --final")
    args = ap.parse_args(argv)
    if args.report:
        report(args)
    elif args.final:
        final(args)
    else:
        cross_validate(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
