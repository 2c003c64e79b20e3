"""An exemplar memory for the safety labels, measured against the shipped head on train_jailbreak's folds; the
jailbreak label's memory is shipped (modelbuild/artifacts/jailbreak_memory.onnx, `--build`).

    python -m modelbuild.safety_memory --split group   # within-origin (near-duplicate groups held out)
    python -m modelbuild.safety_memory --split origin  # by origin (whole origin families held out)
    python -m modelbuild.safety_memory --split group --folds 4 3 --tag=-b   # a part (folds), in another process
    python -m modelbuild.safety_memory --split group --merge :0,1,2 -b:4,3 # the parts fused and saved
    python -m modelbuild.safety_memory --report        # both splits' thresholds (pick_joint) and tables
    python -m modelbuild.safety_memory --prune         # pruned jailbreak memories (VARIANTS), simulated
    python -m modelbuild.safety_memory --quant --floor 0.35   # a pruned memory stored as shipped, exact search
    python -m modelbuild.safety_memory --final         # head + memory on every row, eval-only sets
    python -m modelbuild.safety_memory --build --floor 0.37 --gate 0.05 --memory-thr JB INJ --persona 480  # shipped
    python -m modelbuild.safety_memory --split origin --lean 0 480 --floor 0.37  # folds, stored vote only (safety13)

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
shipped rule (train_jailbreak.pick_joint on held-out scores). The head is retrained here on the same
folds (the shipped recipe), so both columns of every table read the same rows scored by models that never saw them.
Scores are saved under build/safety-cache/memory-<split>.npz with each view's 64 nearest memory views (global view
indices), each fold's memory composition and each stored view's cosine to the nearest jailbreak witness, so pruned
memories can be simulated without a new search (`--prune`) and checked exactly as stored (`--quant`).

The shipped memory (`--build`, benchmarks/RESULTS.md "Tenth session (`safety12`)"): the jailbreak label only
(injection witnesses left out: the ninth session's memory on both labels cost injection recall), the "none" views
within cosine `--floor` of a jailbreak witness (the rest are far from every witness and seldom a neighbour that
matters), 2-bit codes (modelbuild/safety_memory_graph.py), read only for prompts whose head jailbreak score is at
least `--gate`, fused by max on the jailbreak label.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from modelbuild import train_jailbreak as tj
from modelbuild.heads import ARTIFACTS as ARTIFACT_DIR
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
                witness: float = WITNESS, with_mask: bool = False):  # type: ignore[no-untyped-def]
    """(unit views [M,384], class index [M]) of the training bags (see the module docstring); `with_mask` also
    returns which of the bags' concatenated views are stored (bool [sum W_i])."""
    xs, cs, ks = [], [], []
    for b, lab, p in zip(bags, labels, probs, strict=True):
        if lab in ("jailbreak", "injection"):
            col = tj.LABELS.index(lab)
            keep = p[:, col] >= witness
            keep[int(np.argmax(p[:, col]))] = True
            xs.append(b[keep])
            cs.append(np.full(int(keep.sum()), CLASSES.index(lab)))
            ks.append(keep)
        else:
            xs.append(b)
            cs.append(np.zeros(len(b), np.int64))
            ks.append(np.ones(len(b), bool))
    out = unit(np.concatenate(xs)), np.concatenate(cs).astype(np.int64)
    return (*out, np.concatenate(ks)) if with_mask else out


K_SAVED = 64  # neighbours kept per view, so k and tau can be varied from the saved file


def neighbours(mem: np.ndarray, cls: np.ndarray, bags: list[np.ndarray], k: int = K_SAVED,
               chunk: int = 2048) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every view's `k` nearest memory views by cosine, best first: (cosines float16 [V,k], classes uint8 [V,k],
    memory row indices int32 [V,k])."""
    q = unit(np.concatenate(bags))
    sims = np.zeros((len(q), k), np.float16)
    cl = np.zeros((len(q), k), np.uint8)
    at = np.zeros((len(q), k), np.int32)
    for i in range(0, len(q), chunk):
        s = q[i : i + chunk] @ mem.T
        idx = np.argpartition(-s, k, axis=1)[:, :k]
        top = np.take_along_axis(s, idx, 1)
        o = np.argsort(-top, axis=1)
        sims[i : i + chunk] = np.take_along_axis(top, o, 1)
        at[i : i + chunk] = np.take_along_axis(idx, o, 1)
        cl[i : i + chunk] = cls[at[i : i + chunk]]
    return sims, cl, at


def max_cos_to(mem: np.ndarray, targets: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """float16 [M]: each memory row's highest cosine to any of the unit rows `targets` [T,384]."""
    out = np.zeros(len(mem), np.float16)
    for i in range(0, len(mem), chunk):
        out[i : i + chunk] = (mem[i : i + chunk] @ targets.T).max(axis=1)
    return out


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
    sims, cl, _ = neighbours(mem, cls, bags, k)
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


def persona_views(args: argparse.Namespace) -> np.ndarray:
    """float32 [P,384] unit views of `--persona` generated benign persona requests (modelbuild/safety_persona.py;
    every view, as a prompt's: whole row, windows, sentence segments), stored on the memory's "none" side by
    `--quant` and `--build`; [0,384] when `--persona` is 0."""
    if not args.persona:
        return np.zeros((0, DIM), np.float32)
    from modelbuild.safety_persona import persona_prompts

    texts = persona_prompts(args.persona)
    bags = tj.with_positions(tj.views(texts, args.models), texts, args.models)
    bags = tj.with_segments(bags, texts, args.models, tj.SEGMENTS)
    return unit(np.concatenate(bags))


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
    nn = np.zeros((int(sizes.sum()), K_SAVED), np.int32)  # global view index (into all rows' views) of each neighbour
    memcls = np.full((tj.FOLDS, int(sizes.sum())), -1, np.int8)  # per fold: each view's memory class, -1 not stored
    near_jb = np.zeros((tj.FOLDS, int(sizes.sum())), np.float16)  # per fold: a stored view's max cosine to a jb witness
    lean_extra = {n: persona_views(argparse.Namespace(**{**vars(args), "persona": n})) for n in (args.lean or [])}
    lean_votes = {n: np.zeros(int(sizes.sum()), np.float32) for n in lean_extra}
    if args.merge:  # folds run by several processes (`--folds`, each with its own --tag): their partial files
        for spec in args.merge:
            tag, ks = spec.split(":")
            z = np.load(tj.CACHE / f"memory-{args.split}{tag}-partial.npz")
            for k in map(int, ks.split(",")):
                te = np.where(fold == k)[0]
                at = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in te])
                oof[te], sims[at], cl[at], nn[at] = z["oof"][te], z["sims"][at], z["cl"][at], z["nn"][at]
                memcls[k], near_jb[k] = z["memcls"][k], z["near_jb"][k]
    for k in ([] if args.merge else args.folds if args.folds else range(tj.FOLDS)):
        t0 = time.time()
        tr, te = np.where(fold != k)[0], np.where(fold == k)[0]
        model = tj.train([tr_bags[i] for i in tr], y[tr], m[tr], w[tr], args.epochs, args.hidden)
        oof[te] = tj.score(model, [tr_bags[i] for i in te])
        probs = view_probs(model, [tr_bags[i] for i in tr])
        mem, cls, kept = memory_rows([tr_bags[i] for i in tr], [labels[i] for i in tr], probs, args.witness, True)
        gtr = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in tr])[kept]  # memory row -> global view
        memcls[k, gtr] = cls
        if args.lean is None:
            near_jb[k, gtr] = max_cos_to(mem, mem[cls == 1])
        at = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in te])
        if args.lean is not None:  # the stored memory's exact vote only (as --quant), no 64-nearest lists
            for n_persona, extra in lean_extra.items():
                lean_votes[n_persona][at] = stored_vote(mem, cls, extra, np.concatenate([tr_bags[i] for i in te]),
                                                        args)
        else:
            s_te, c_te, i_te = neighbours(mem, cls, [tr_bags[i] for i in te])
            sims[at], cl[at], nn[at] = s_te, c_te, gtr[i_te]
        print(f"fold {k}: memory {len(mem)} views ({np.bincount(cls, minlength=3).tolist()}), "
              f"{time.time() - t0:.0f} s", flush=True)
        np.savez(tj.CACHE / f"memory-{args.split}{args.tag}-partial.npz", oof=oof, sims=sims, cl=cl, nn=nn,
                 memcls=memcls, near_jb=near_jb, done=k)
    if args.folds and not args.merge:
        return  # a part: merged by a later `--merge` run
    lex = tj._Lex(rows, ev, args.models, y, w, tj.SEGMENTS)
    if args.merge:  # folds no part ran are not reported: their rows count as always trained (as they were)
        ran = sorted({int(k) for spec in args.merge for k in spec.split(":")[1].split(",")})
        fold = np.where(np.isin(fold, ran) | (fold < 0), fold, -1)
        fused = oof.copy()
        for k in ran:
            tr, te = np.where(fold != k)[0], np.where(fold == k)[0]
            fused[te] = lex.fused(oof[te], lex.fit(tr).bag_max([lex.vids[i] for i in te]))
    else:
        fused = lex.held_out(oof, fold)
    tj.CACHE.mkdir(parents=True, exist_ok=True)
    cuts = np.cumsum(np.concatenate([[0], sizes]))
    for n_persona, v in lean_votes.items():  # the files --prune reads as "stored <floor>-0[-p<n>]"
        name = f"quant-{args.split}{args.tag}-{args.floor}-0{f'-p{n_persona}' if n_persona else ''}.npz"
        np.savez(tj.CACHE / name, vote=np.maximum.reduceat(v, cuts[:-1]))
        print(f"wrote {tj.CACHE / name}")
    np.savez(tj.CACHE / f"memory-{args.split}{args.tag}.npz", head=fused, sims=sims, cl=cl, sizes=sizes, fold=fold,
             nn=nn, memcls=memcls, near_jb=near_jb, labels=np.array(labels), origins=np.array([r["origin"] for r in rows]))
    print(f"wrote {tj.CACHE}/memory-{args.split}{args.tag}.npz")


def stored_vote(mem: np.ndarray, cls: np.ndarray, extra: np.ndarray, views: np.ndarray,
                args: argparse.Namespace) -> np.ndarray:
    """float32 [V]: the jailbreak vote of a fold's memory (`mem` unit views [M,384], `cls` [M] from memory_rows)
    stored as shipped (jailbreak witnesses; "none" views, and the `extra` persona views [P,384], whose cosine to the
    nearest witness is at least --floor; 2-bit codes) for the held-out `views` [V,>=384], searched exactly."""
    from modelbuild.category_memory import MemoryVote
    from modelbuild.safety_memory_graph import unit_rows, vote as graph_vote

    wit = mem[cls == 1]
    floor = args.floor if args.floor is not None else -2.0
    near = max_cos_to(mem, wit).astype(np.float32)
    keep = (cls == 1) | ((cls == 0) & (near >= floor))
    rows, lab = mem[keep], (cls[keep] == 1).astype(np.int64)
    if len(extra):
        more = extra[max_cos_to(extra, wit).astype(np.float32) >= floor]
        rows, lab = np.concatenate([rows, more]), np.concatenate([lab, np.zeros(len(more), np.int64)])
    store = MemoryVote.build(unit_rows(rows), lab, 2, args.k, args.tau)
    return graph_vote(store, np.asarray(views[:, :DIM], np.float32), 1024)


def _load(path: Path, k: int, tau: float) -> dict[str, np.ndarray]:
    z = np.load(path)
    keep = z["fold"] >= 0
    out = {key: z[key][keep] for key in ("head", "labels", "origins")}
    out["memory"] = vote_from(z["sims"], z["cl"], z["sizes"], k, tau)[keep]
    return out


def keep_masks(z, floor: float | None, injection: bool) -> np.ndarray:  # type: ignore[no-untyped-def]
    """bool [FOLDS, V]: which stored views a pruned jailbreak memory keeps per fold: every jailbreak witness; the
    "none" views (and with `injection` the injection witnesses, as "none") whose cosine to the nearest jailbreak
    witness of that fold is at least `floor` (None: all)."""
    mc, near = z["memcls"], z["near_jb"].astype(np.float32)
    other = (mc == 0) | ((mc == 2) if injection else np.zeros_like(mc, bool))
    if floor is not None:
        other &= near >= floor
    return (mc == 1) | other


def pruned_vote(z, keep: np.ndarray, k: int = K, tau: float = TAU) -> tuple[np.ndarray, float]:  # type: ignore[no-untyped-def]
    """Per row the max over its views of the k-nearest jailbreak vote of a memory pruned to `keep` [FOLDS, V]
    (simulated on the saved 64 nearest of the full memory: a view's k nearest kept views are its first k kept ones
    among them) and the share of views with fewer than k kept among their 64 (those are padded with "none" at the
    64th cosine, an approximation). Returns ([N] float, share)."""
    sizes, fold = z["sizes"], z["fold"]
    rows_of_view = np.repeat(np.arange(len(sizes)), sizes)
    vfold = fold[rows_of_view]
    out = np.zeros(int(sizes.sum()), np.float32)
    short = 0
    for f in range(tj.FOLDS):
        v = np.where(vfold == f)[0]
        nn, sims = z["nn"][v], z["sims"][v].astype(np.float32)
        kp = keep[f][nn]
        rank = np.cumsum(kp, axis=1)
        use = kp & (rank <= k)
        n_use = use.sum(1)
        short += int((n_use < k).sum())
        first = np.argmax(kp, axis=1)
        top = np.where(kp.any(1), sims[np.arange(len(v)), first], sims[:, -1])
        w = np.exp((sims - top[:, None]) / tau) * use
        pad = (k - n_use) * np.exp((sims[:, -1] - top) / tau)
        jb = (w * (z["memcls"][f][nn] == 1)).sum(1)
        out[v] = jb / (w.sum(1) + pad) * (0.99 + 0.01 * top)
    cuts = np.cumsum(np.concatenate([[0], sizes]))
    return np.maximum.reduceat(out, cuts[:-1]), short / max(1, int((vfold >= 0).sum()))


VARIANTS = {  # name -> (floor, injection witnesses kept as "none", gate: memory read only when head jb >= gate)
    "all+inj": (None, True, 0.0), "all": (None, False, 0.0), "floor0.2": (0.2, False, 0.0),
    "floor0.25": (0.25, False, 0.0), "floor0.3": (0.3, False, 0.0), "floor0.35": (0.35, False, 0.0),
    "floor0.45": (0.45, False, 0.0), "floor0.3 gate0.05": (0.3, False, 0.05), "floor0.4 gate0.05": (0.4, False, 0.05),
    "floor0.35 gate0.05": (0.35, False, 0.05), "floor0.37": (0.37, False, 0.0), "floor0.37 gate0.05": (0.37, False, 0.05),
    "floor0.4": (0.4, False, 0.0), "floor0.5": (0.5, False, 0.0), "floor0.55": (0.55, False, 0.0),
    "floor0.6": (0.6, False, 0.0), "floor0.65": (0.65, False, 0.0), "floor0.7": (0.7, False, 0.0),
    "floor0.5+inj": (0.5, True, 0.0), "floor0.6+inj": (0.6, True, 0.0),
    "floor0.5 gate0.01": (0.5, False, 0.01), "floor0.5 gate0.05": (0.5, False, 0.05),
    "floor0.5 gate0.2": (0.5, False, 0.2), "floor0.6 gate0.05": (0.6, False, 0.05),
}


def prune_report(args: argparse.Namespace) -> None:
    """Pruned jailbreak memories (VARIANTS) fused by max on the jailbreak label, per split at pick_joint thresholds
    chosen on the splits given (`--choose-on`), with the memory's size at 2 bits a dimension."""
    data = {}
    for split in ("group", "origin"):
        path = tj.CACHE / f"memory-{split}{args.tag}.npz"
        if path.is_file():
            data[split] = dict(np.load(path))
    choose = [s for s in args.choose_on if s in data]
    print(f"splits: {list(data)}; thresholds chosen on {choose}; k {args.k}, tau {args.tau}")

    def held(d: dict, p: np.ndarray) -> dict[str, np.ndarray]:
        return {"benign": p[d["labels"] == "benign"], "lookalike": p[d["labels"] == "benign_lookalike"]}

    stored = sorted({q.name.split("-", 2)[2].removesuffix(".npz") for split in data
                     for q in tj.CACHE.glob(f"quant-{split}{args.tag}-*.npz")})  # quant_report's exact votes
    results = {}
    for name in ("head", *(() if args.only_stored else VARIANTS), *(f"stored {x}" for x in stored)):  # at --gate
        ps, size, gated = {}, [], []
        for split, z in data.items():
            dev = z["fold"] >= 0
            h = z["head"]
            if name == "head":
                ps[split], short = h[dev], 0.0
            elif name.startswith("stored "):
                qf = tj.CACHE / f"quant-{split}{args.tag}-{name.split()[1]}.npz"
                if not qf.is_file():
                    continue
                v, short = np.load(qf)["vote"], 0.0
                # read as the runtime reads it (one part: the prompt): head jb >= gate and injection < injection gate
                v = np.where((h[:, 0] >= args.gate) & (h[:, 1] < args.injection_gate), v, 0.0)
                ps[split] = np.concatenate([np.maximum(h[:, :1], v[:, None]), h[:, 1:]], axis=1)[dev]
                gated.append(float((h[:, 0][dev & (z["labels"] == "benign")] >= args.gate).mean()))
            else:
                floor, inj, gate = VARIANTS[name]
                keep = keep_masks(z, floor, inj)
                v, short = pruned_vote(z, keep, args.k, args.tau)
                v = np.where(h[:, 0] >= gate, v, 0.0)
                gated.append(float((h[:, 0][dev & (z["labels"] == "benign")] >= gate).mean()))
                ps[split] = np.concatenate([np.maximum(h[:, :1], v[:, None]), h[:, 1:]], axis=1)[dev]
                size.append(keep.sum(1).mean())
        if not all(s in ps for s in choose):
            continue
        sets = [held({"labels": data[s]["labels"][data[s]["fold"] >= 0]}, ps[s]) for s in choose]
        lab0 = data[choose[0]]["labels"][data[choose[0]]["fold"] >= 0]
        tj_, ti = tj.pick_joint(sets, 0.01, 0.05, {"jailbreak": ps[choose[0]][lab0 == "jailbreak"],
                                                   "injection": ps[choose[0]][lab0 == "injection"]}) \
            if not args.fixed_thr else args.fixed_thr
        thr = {"jailbreak": tj_, "injection": ti, "harmful": 1.0}
        line = f"{name:18s} {tj_:.4f}/{ti:.4f} "
        if size:
            line += f"views {np.mean(size):7.0f} ({np.mean(size) * 96 / 1e6:4.1f} MB) "
        summ = {}
        for split, z in data.items():
            if split not in ps:
                continue
            dev = z["fold"] >= 0
            _, s = tj.table([{"label": a, "origin": b} for a, b in zip(z["labels"][dev], z["origins"][dev],
                                                                        strict=True)], ps[split], thr)
            summ[split] = s
            line += f"| {split}: " + " / ".join(f"{100 * s['ALL/' + lab]:.1f}" for lab in
                                                ("jailbreak", "injection", "benign", "benign_lookalike")) + " "
        results[name] = (thr, summ)
        print(line + (f"| short {100 * short:.1f}%, benign read {100 * np.mean(gated):.0f}%" if name != "head"
                      else ""), flush=True)
    for name in args.show:
        print(f"\nper origin, head -> {name}")
        for split in data:
            if split not in results[name][1]:
                continue
            b, n = results["head"][1][split], results[name][1][split]
            print(f"[{split}]")
            for origin in sorted(b):
                if origin.startswith("ALL/"):
                    continue
                col = b[origin]["label"] if b[origin]["label"] in ("jailbreak", "injection") else "either"
                print(f"  {origin:30s} {b[origin]['label']:17s} {b[origin]['n']:5d} {100 * b[origin][col]:6.1f}% -> "
                      f"{100 * n[origin][col]:6.1f}%")


def quant_report(args: argparse.Namespace) -> None:
    """The pruned memory (`--floor`, jailbreak witnesses + "none" views) stored as the runtime stores it (2-bit
    codes, optionally `--pca` dimensions fitted on the fold's memory views), searched exactly per fold; the fused
    scores saved as build/safety-cache/quant-<split><tag>-<floor>-<pca>.npz (head column 0 replaced) for --prune."""
    from modelbuild.category_memory import MemoryVote
    from modelbuild.safety_memory_graph import pca, unit_rows, vote as graph_vote

    rows, ev, bags, y, m, w = prepare(args)
    allv = np.concatenate(bags[: len(rows)])[:, :DIM]
    del bags
    z = dict(np.load(args.memory_file or tj.CACHE / f"memory-{args.split}{args.tag}.npz"))
    if "sizes" not in z:
        raise SystemExit("--quant needs a merged file (--merge) or a --memory-file with sizes and fold")
    keep = keep_masks(z, args.floor, False)
    sizes, fold = z["sizes"], z["fold"]
    vfold = fold[np.repeat(np.arange(len(sizes)), sizes)]
    for n_persona in dict.fromkeys([args.persona, *args.also_persona]):  # one file per persona count
        # "none" views of no shared row: the same in every fold, pruned by the same floor
        extra = persona_views(argparse.Namespace(**{**vars(args), "persona": n_persona}))
        out = np.zeros(len(allv), np.float32)
        for f in (args.folds or range(tj.FOLDS)):
            t0 = time.time()
            kept = np.where(keep[f])[0]
            rows_, cls_ = unit(allv[kept]), (z["memcls"][f][kept] == 1).astype(np.int64)
            if len(extra):
                near = max_cos_to(extra, unit(allv[np.where(z["memcls"][f] == 1)[0]])).astype(np.float32)
                more = extra[near >= (args.floor if args.floor is not None else -2.0)]
                rows_ = np.concatenate([rows_, more])
                cls_ = np.concatenate([cls_, np.zeros(len(more), np.int64)])
            proj = pca(rows_, args.pca) if args.pca else None
            mem = MemoryVote.build(unit_rows(rows_, proj), cls_, 2, args.k, args.tau)
            te = np.where(vfold == f)[0]
            out[te] = graph_vote(mem, allv[te], 1024, proj)
            print(f"persona {n_persona}, fold {f}: {mem.n_rows} rows x {mem.codes.shape[1] * 4} dims, "
                  f"{mem.codes.nbytes / 1e6:.1f} MB, {time.time() - t0:.0f} s", flush=True)
        cuts = np.cumsum(np.concatenate([[0], sizes]))
        v = np.maximum.reduceat(out, cuts[:-1])
        name = f"quant-{args.split}{args.tag}-{args.floor}-{args.pca}{f'-p{n_persona}' if n_persona else ''}.npz"
        np.savez(tj.CACHE / name, vote=v)
        print(f"wrote {tj.CACHE / name}", flush=True)


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


def shipped_view_probs(bags: list[np.ndarray], path: Path = ARTIFACT_DIR / "jailbreak_head.onnx",
                       chunk: int = 4096) -> list[np.ndarray]:
    """Per bag the shipped head's embedding-branch probabilities per view [W_i,3] (`probs`; the word-piece inputs
    are fed one padding token: `probs` does not read them)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.concatenate(bags).astype(np.float32)
    p = np.concatenate([sess.run(["probs"], {"embedding": x[i : i + chunk],
                                             "input_ids": np.zeros((len(x[i : i + chunk]), 1), np.int64),
                                             "attention_mask": np.ones((len(x[i : i + chunk]), 1), np.int64)})[0]
                        for i in range(0, len(x), chunk)])
    cuts = np.cumsum([0] + [len(b) for b in bags])
    return [p[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def build(args: argparse.Namespace) -> None:
    """The shipped memory, from every training row: the shipped head (modelbuild/artifacts/jailbreak_head.onnx,
    trained on every row by train_jailbreak.py) picks the jailbreak witness views; the "none" views whose cosine to
    the nearest witness is at least `--floor` are kept; stored as modelbuild/artifacts/jailbreak_memory.onnx (2-bit
    codes, `--pca` dimensions when > 0) with its labels file (k, tau, floor, the operating points `--memory-thr`).
    The eval-only sets are measured through the router's analyzer: benchmarks/bench_safety_memory.py."""
    import json

    from modelbuild.category_memory import MemoryVote
    from modelbuild.safety_memory_graph import export, pca, unit_rows

    rows, ev, bags, y, m, w = prepare(args)
    tr_bags = bags[: len(rows)]
    mem, cls = memory_rows(tr_bags, [r["label"] for r in rows], shipped_view_probs(tr_bags), args.witness)
    extra = persona_views(args)
    mem, cls = np.concatenate([mem, extra]), np.concatenate([cls, np.zeros(len(extra), np.int64)])
    near = max_cos_to(mem, mem[cls == 1]).astype(np.float32)
    keep = (cls == 1) | ((cls == 0) & (near >= (args.floor if args.floor is not None else -2.0)))
    proj = pca(mem[keep], args.pca) if args.pca else None
    store = MemoryVote.build(unit_rows(mem[keep], proj), (cls[keep] == 1).astype(np.int64), 2, args.k, args.tau)
    path = ARTIFACT_DIR / "jailbreak_memory.onnx"
    export(store, path, tr_bags[0].shape[1], proj)
    meta = {"labels": ["jailbreak"], "output": "vote", "fusion": "max", "k": args.k, "tau": args.tau,
            "witness": args.witness, "floor": args.floor, "pca": args.pca, "gate": args.gate,
            "injection_gate": args.injection_gate, "rows": store.n_rows,
            "witnesses": int((cls[keep] == 1).sum()), "persona": args.persona,
            "persona_rows": int(keep[len(mem) - len(extra):].sum()),
            "thresholds": {"jailbreak": args.memory_thr[0], "injection": args.memory_thr[1]}}
    (ARTIFACT_DIR / "jailbreak_memory.labels.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {store.n_rows} rows: {meta['witnesses']} witnesses; "
          f"of {len(mem)} stored views before pruning, {int((cls == 2).sum())} injection witnesses left out)")


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
    ap.add_argument("--folds", nargs="*", type=int, default=[], help="run only these folds (a part, see --merge)")
    ap.add_argument("--merge", nargs="*", default=[],
                    help="TAG:FOLDS,... per part: take those folds from memory-<split>TAG-partial.npz, then fuse and save")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--final", action="store_true")
    ap.add_argument("--build", action="store_true", help="write the shipped memory (modelbuild/artifacts)")
    ap.add_argument("--memory-thr", nargs=2, type=float, default=[0.99, 0.93],
                    help="--build: the jailbreak / injection thresholds with the memory (recorded in the labels file)")
    ap.add_argument("--quant", action="store_true", help="exact search of the stored (2-bit, --pca) pruned memory")
    ap.add_argument("--floor", type=float, default=None, help="--quant: none views' cosine floor to a witness")
    ap.add_argument("--pca", type=int, default=0, help="--quant: dimensions kept (0: all 384)")
    ap.add_argument("--lean", nargs="*", type=int, default=None,
                    help="cross-validation: per fold only the stored memory's exact vote (as --quant at --floor), once "
                         "per --persona count given here (0: none), saved as the quant files --prune reads; no "
                         "64-nearest lists (--prune's simulated variants then read zeros)")
    ap.add_argument("--also-persona", nargs="*", type=int, default=[],
                    help="--quant: also these --persona counts, one file each (the views read once)")
    ap.add_argument("--persona", type=int, default=0,
                    help="--quant, --build: generated benign persona requests (modelbuild/safety_persona.py) whose "
                         "views are stored as \"none\" (pruned by --floor like the rest)")
    ap.add_argument("--gate", type=float, default=0.0,
                    help="--build, --prune (stored): the memory is read only for prompts whose head jailbreak score is "
                         "at least this")
    ap.add_argument("--injection-gate", type=float, default=0.5,
                    help="--build: ... and whose head injection score is under this")
    ap.add_argument("--memory-file", type=Path, default=None, help="--quant: the cross-validation file to read")
    ap.add_argument("--prune", action="store_true", help="pruned jailbreak memories' table (VARIANTS)")
    ap.add_argument("--choose-on", nargs="*", default=["group"], help="splits the --prune thresholds are chosen on")
    ap.add_argument("--show", nargs="*", default=[], help="--prune variants to print per origin")
    ap.add_argument("--only-stored", action="store_true", help="--prune: the head and the stored (--quant) files only")
    ap.add_argument("--fixed-thr", nargs=2, type=float, default=None,
                    help="--prune: report every variant at these jailbreak / injection thresholds (e.g. the shipped "
                         "0.9961 0.9348) instead of pick_joint's")
    ap.add_argument("--thr", nargs="*", default=[], help="fusion:jailbreak:injection thresholds for --final")
    args = ap.parse_args(argv)
    if args.report:
        report(args)
    elif args.prune:
        prune_report(args)
    elif args.quant:
        quant_report(args)
    elif args.build:
        build(args)
    elif args.final:
        final(args)
    else:
        cross_validate(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
