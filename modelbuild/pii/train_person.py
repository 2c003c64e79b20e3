"""Train and measure the learned PERSON check (`semrouter/signals/pii/person_model.py`) -> `artifacts/pii_person.json`.

    HF_HUB_OFFLINE=1 .venv/bin/python -m modelbuild.pii.train_person [--report] [--out modelbuild/artifacts] \
        [--no-candidates | --floor 0.1 --capitalised --extra-margins 0,0.05,0.1,0.15] [--ceiling] \
        [--features 3 --model mlp --hidden 32 --seeds 3 --epochs 30 --alphas 0.01,0.1,1.0 | --features 2 --model logistic]

Data (person_data.py): PERSON spans the head proposes in pii-dev and in 1,500 requests of the head's own
generator (modelbuild/pii/datagen.py, seed 31: private people named in chat-style requests; always trained
on, never validated) (positive when they overlap a gold PERSON) and in benign prompts (negative): the jailbreak-dev `benign` origins, a Quora sample and STS English
sentences (samples disjoint from the ones bench_pii.py reports). A logistic model on standardised
`span_features`; C and the threshold are picked on a validation part only (groups of near-duplicates held
out): the highest of the thresholds at which at most `--chat-budget` of each source's validation prompts
(jailbreak-dev chat, Quora, STS) are flagged by any entity, C the one with the best validation PERSON recall.

Candidates (tenth session): besides the head's own PERSON spans, the extra candidates of
signals/pii/candidates.py (words whose PERSON probability is >= `--floor`, 0.1, below the argmax; `--capitalised`
adds runs of capitalised words: measured, not shipped) with the feature `extra` set. An extra candidate counts
only by the model, at the threshold plus a margin picked with C on the validation part (`--extra-margins`); the
file stores it as `extra_threshold`, with the floor. `--no-candidates` gives the ninth session's candidates.

Model (eleventh session): feature version 3 of person_model.py (neighbours apart, the head's label probabilities,
casing, recurrence, position; `--features 2` gives the tenth session's) and a small MLP (`--model mlp`: `--seeds`
nets of `--hidden` ReLU units trained for `--epochs` epochs with class-balanced sample weights, their logits
averaged, which is one net with all their hidden units; the L2 penalty picked from `--alphas` on the validation
part like C). `--features 2 --model logistic` is the tenth session's check.

Decision at run time (`--rule cue`, shipped): in a language the head is trusted on, a PERSON counts when the
text has other personal data (rule 1 of person.py), a cue word ties it to a person (rules 2-4), or the model's
probability reaches the threshold; the census lists are a feature of the model, no longer a rule beside it.
Measured and not shipped: `--rule learned` (rule 1 or the model only: +5 points of recall, but the held-out
arena-hard/v0.1 prompts 2.8-3.3% flagged and cue-word cases such as "my colleague X" left to the model) and
`--rule or` (today's rules, census full names included, or the model: today's flags alone use up the
validation budget on STS, so the threshold admits nothing).

`--report` prints the measured tables (markdown): within-origin (5 folds of near-duplicate groups inside every
origin) and by origin (a whole pii-dev origin and the chat origins never read by the cue rules held out),
per origin, today's policy vs the learned one. Without it, only the shipped model is fitted and written:
trained on both pii-dev origins and the dev chat origins, Quora/STS training samples; held out from it:
arena-hard/v0.1, gpteacher/codegen, gpteacher/toolformer, XSTest, the Quora and STS rows bench_pii.py reads,
pii-clean-dev.

Needs ../shared/data (not part of `make models`: the artifact is committed, 0.03 MB, and copied by build_all).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelbuild.pii.person_data import CHAT_DEV, CHAT_HELD_OUT, DATAGEN_ORIGIN, ROOT, Row, extract, load_rows, summary
from semrouter.signals.pii.person_model import FEATURE_VERSION, PERSON_MODEL_FILE, scalars_of

CS = (0.003, 0.01, 0.03, 0.1)
FOLDS = 5


def fold_of(row: Row) -> int:
    """Fold of the row's near-duplicate group (stable: sha256 of origin + group key)."""
    return hashlib.sha256(f"{row.origin}\x00{row.group}".encode()).digest()[0] % FOLDS


@dataclass(frozen=True)
class Model:
    """Standardisation, then a logistic (`hw` None) or one hidden ReLU layer `hw` [dim,H], `hb` [H] and a logistic
    on it (`coef` [H]: several nets' hidden units side by side, their logits averaged)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    b: float
    hw: np.ndarray | None = None
    hb: np.ndarray | None = None
    skip: np.ndarray | None = None  # [dim]: a linear term beside the hidden layer (KIND "mix")


_MLP_CACHE: dict[tuple[int, int], Model] = {}  # KIND "mix": the nets of one training set, fitted once for every C


def _xy(rows: Sequence[Row]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for r in rows:
        if r.feats is None:
            continue
        xs.append(r.feats)
        ys += [label(r, s, e) for s, e, *_ in r.cands]
    return np.concatenate(xs).astype(np.float64), np.array(ys)


def fit(rows: Sequence[Row], c: float) -> Model:
    """On the candidates of `rows` (pii-dev: gold overlap; else negative), classes balanced: a logistic regression
    of inverse regularisation `c` (KIND "logistic"), or SEEDS MLPs of HIDDEN ReLU units with L2 penalty `c`
    (KIND "mlp"; their logits averaged, which is one wider net)."""
    x, y = _xy(rows)
    mean, scale = x.mean(0), x.std(0) + 1e-3
    z = (x - mean) / scale
    weight = np.where(y == 1, 0.5 / max(y.mean(), 1e-6), 0.5 / max(1 - y.mean(), 1e-6))
    if KIND[0] in ("logistic", "mix"):
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
        lr.fit(z, y)
        if KIND[0] == "logistic":
            return Model(mean, scale, lr.coef_[0], float(lr.intercept_[0]))
        key = (id(rows), len(rows))
        if key not in _MLP_CACHE:
            _MLP_CACHE.clear()
            _MLP_CACHE[key] = _nets(z, y, weight, mean, scale, MIX_ALPHA[0])
        m = _MLP_CACHE[key]  # the logistic's and the nets' logits averaged
        assert m.hw is not None and m.hb is not None
        return Model(mean, scale, m.coef / 2, (m.b + float(lr.intercept_[0])) / 2, m.hw, m.hb, lr.coef_[0] / 2)
    return _nets(z, y, weight, mean, scale, c)


def _nets(z: np.ndarray, y: np.ndarray, weight: np.ndarray, mean: np.ndarray, scale: np.ndarray, c: float) -> Model:
    """SEEDS MLPs (HIDDEN ReLU units, L2 penalty `c`) on the standardised features `z`, logits averaged."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.utils.extmath import randomized_svd

    # the token-state means (every column before the scalars) projected on their first PCA components: the nets
    # train on [components | scalars]; the projection folds into the first layer, so the artifact is one layer
    emb = z.shape[1] - len(scalars_of(VERSION[0]))
    proj = randomized_svd(z[:, :emb], PCA[0], random_state=0)[2]  # [k, emb]
    zr = np.concatenate([z[:, :emb] @ proj.T, z[:, emb:]], axis=1)
    hw, hb, coef, b = [], [], [], 0.0
    for seed in range(SEEDS[0]):
        net = MLPClassifier(hidden_layer_sizes=(HIDDEN[0],), alpha=c, batch_size=256, learning_rate_init=1e-3,
                            max_iter=EPOCHS[0], random_state=seed, early_stopping=False, tol=1e-5,
                            n_iter_no_change=EPOCHS[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter reached: a fixed number of epochs is the recipe
            net.fit(zr, y, sample_weight=weight)
        w1 = net.coefs_[0]  # [k + scalars, H]
        hw.append(np.concatenate([proj.T @ w1[: len(proj)], w1[len(proj) :]], axis=0))
        hb.append(net.intercepts_[0])
        coef.append(net.coefs_[1][:, 0] / SEEDS[0])
        b += float(net.intercepts_[1][0]) / SEEDS[0]
    return Model(mean, scale, np.concatenate(coef), b, np.concatenate(hw, axis=1), np.concatenate(hb))


def label(row: Row, s: int, e: int) -> int:
    return int(row.kind == "pii" and any(gs < e and s < ge for gs, ge in row.gold))


def probs(model: Model, row: Row) -> np.ndarray:
    if row.feats is None:
        return np.zeros(0)
    x = (row.feats - model.mean) / model.scale
    z = np.full(len(x), model.b) if model.skip is None else x @ model.skip + model.b
    if model.hw is not None:
        assert model.hb is not None
        x = np.maximum(x @ model.hw + model.hb, 0.0)
    z = z + x @ model.coef
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def kept(row: Row, p: np.ndarray, thr: float | None) -> list[bool]:
    """Per candidate: counts under today's policy (thr None), else under RULE (in a trusted language): "or" =
    today's OR the learned check; "learned" = the check or other personal data in the text (rule 1); "cue" = the
    check, rule 1 or a cue word (rules 2-4)."""
    if thr is None or not row.trusted:
        return [c[3] for c in row.cands]
    if RULE[0] == "learned":
        out = [row.other_flag or float(q) >= thr for q in p]
    elif RULE[0] == "cue":
        if row.feats is None:
            return []
        names = scalars_of(VERSION[0])
        cue = row.feats[:, row.feats.shape[1] - len(names) + names.index("cue")]
        out = [row.other_flag or bool(c) or float(q) >= thr for c, q in zip(cue, p, strict=True)]
    else:
        out = [old or float(q) >= thr for (_, _, _, old, _), q in zip(row.cands, p, strict=True)]
    # an extra candidate (candidates.py) counts only when the check accepts it, at EXTRA_MARGIN over the threshold
    margin = MARGIN_OF.get(id(row), EXTRA_MARGIN[0])
    return [float(q) >= thr + margin if c[4] else o for c, q, o in zip(row.cands, p, out, strict=True)]


RULE = ["cue"]  # set once by main() from --rule
EXTRA_MARGIN = [0.0]  # the margin in use: picked with C on each validation part from MARGINS
MARGINS: list[tuple[float, ...]] = [(0.0,)]  # set once by main() from --extra-margins
MARGIN_OF: dict[int, float] = {}  # within-origin: the margin of the fold that scores the row (id of the row)
FLOOR: list = [None, True]  # set once by main() from --floor / --no-capitalised
KIND = ["mix"]  # set once by main() from --model
HIDDEN = [64]  # set once by main() from --hidden
SEEDS = [3]  # set once by main() from --seeds
EPOCHS = [50]  # set once by main() from --epochs
PCA = [64]  # set once by main() from --pca
MIX_ALPHA = [1.0]  # KIND "mix": the nets' L2 penalty (the grid then holds the logistic's C): --mix-alpha
GRID: list[tuple[float, ...]] = [CS]  # C (logistic) or the L2 penalty alpha (mlp): set by main()
VERSION = [FEATURE_VERSION]  # set once by main() from --features


def flagged(row: Row, p: np.ndarray, thr: float | None) -> bool:
    return row.other_flag or any(kept(row, p, thr))


def recall(rows: Sequence[Row], ps: Sequence[np.ndarray], thr: float | None, records_only: bool = False
           ) -> tuple[int, int]:
    """(gold PERSON spans found, gold PERSON spans) over pii-dev rows."""
    hit = n = 0
    for r, p in zip(rows, ps, strict=True):
        if r.kind != "pii" or (records_only and not r.in_record):
            continue
        k = kept(r, p, thr)
        for gs, ge in r.gold:
            n += 1
            hit += any(kk and s < ge and gs < e for (s, e, *_), kk in zip(r.cands, k, strict=True))
    return hit, n


def pick_threshold(rows: Sequence[Row], ps: Sequence[np.ndarray], budget: float) -> float:
    """Lowest threshold at which at most `budget` of the chat rows of each source (jailbreak-dev prompts, Quora,
    STS) in `rows` are flagged, today's other flags included: the highest of the three sources' thresholds."""
    chat = [(r, p) for r, p in zip(rows, ps, strict=True) if r.kind == "chat"]
    return max(_threshold([(r, p) for r, p in chat if _source(r) == src], budget) for src in {_source(r) for r, _ in chat})


def _source(row: Row) -> str:
    return row.origin.split("/")[0] if row.origin.startswith(("qqp/", "sts-en/")) else "jailbreak-dev"


def _threshold(chat: Sequence[tuple[Row, np.ndarray]], budget: float) -> float:
    base = [flagged(r, np.full(len(p), -1.0), 0.0) for r, p in chat]  # flagged whatever the threshold
    allowed = int(budget * len(chat)) - sum(base)
    # a chat row not flagged anyway becomes flagged at the max probability of its trusted candidates
    tops = sorted((max(float(q) - (EXTRA_MARGIN[0] if c[4] else 0.0) for c, q in zip(r.cands, p, strict=True))
                   for (r, p), b in zip(chat, base, strict=True) if len(p) and r.trusted and not b), reverse=True)
    if allowed < 0:
        return 1.01
    return float(tops[allowed]) + 1e-6 if allowed < len(tops) else 0.0


def train_and_pick(train: Sequence[Row], val: Sequence[Row], budget: float) -> tuple[Model, float, float]:
    """(model fitted on `train`, threshold and C picked on `val`)."""
    best: tuple[float, Model, float, float, float] | None = None
    for c in GRID[0]:
        m = fit(train, c)
        ps = [probs(m, r) for r in val]
        for margin in MARGINS[0]:
            EXTRA_MARGIN[0] = margin
            thr = pick_threshold(val, ps, budget)
            h, n = recall(val, ps, thr)
            if best is None or h / max(n, 1) > best[0]:
                best = (h / max(n, 1), m, thr, c, margin)
    assert best is not None
    EXTRA_MARGIN[0] = best[4]
    print(f"  validation PERSON recall {100 * best[0]:.1f}% (C {best[3]}, threshold {best[2]:.3f}, margin {best[4]})")
    return best[1], best[2], best[3]


def _pct(a: float, b: float) -> str:
    return f"{100 * a / b:.1f}%" if b else "-"


def table(title: str, rows: Sequence[Row], ps: Sequence[np.ndarray], thr_of: Callable[[Row], float], held: str) -> None:
    """Per origin: PERSON recall (all, in records) for pii-dev, texts flagged otherwise; today vs learned."""
    print(f"\n#### {title}\n")
    print("| origin | texts | gold PERSON | today | learned | in records: today | learned |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    by: dict[str, list[tuple[Row, np.ndarray]]] = defaultdict(list)
    for r, p in zip(rows, ps, strict=True):
        by[r.origin].append((r, p))
    for origin in sorted(by, key=lambda o: (by[o][0][0].kind != "pii", o)):
        rs = [r for r, _ in by[origin]]
        pp = [p for _, p in by[origin]]
        tag = held if origin in HELD_OUT_NAMES else ""
        if rs[0].kind == "pii":
            cells = []
            for rec in (False, True):
                h0, n = recall(rs, pp, None, rec)
                h1 = sum(recall([r], [p], thr_of(r), rec)[0] for r, p in zip(rs, pp, strict=True))
                cells.append((n, _pct(h0, n), _pct(h1, n)))
            print(f"| {tag}{origin} | {len(rs)} | {cells[0][0]} | {cells[0][1]} | **{cells[0][2]}** | {cells[1][1]} "
                  f"| {cells[1][2]} |")
        else:
            f0 = sum(flagged(r, p, None) for r, p in zip(rs, pp, strict=True))
            f1 = sum(flagged(r, p, thr_of(r)) for r, p in zip(rs, pp, strict=True))
            print(f"| {tag}{origin} (flagged) | {len(rs)} | | {_pct(f0, len(rs))} | **{_pct(f1, len(rs))}** | | |")


HELD_OUT_NAMES: set[str] = set()


def ceiling(rows: Sequence[Row]) -> None:
    """Per origin: gold PERSON spans some candidate overlaps (the head's own / with the extra candidates), and
    candidates per text (the head's / extra)."""
    print("\n| origin | texts | gold PERSON | head's candidates | + extra candidates | head cands / text "
          "| extra / text |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    by: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by[r.origin].append(r)
    for origin in sorted(by, key=lambda o: (by[o][0].kind != "pii", o)):
        rs = by[origin]
        n = h0 = h1 = 0
        for r in rs:
            for gs, ge in r.gold:
                n += 1
                h0 += any(s < ge and gs < e for s, e, _, _, x in r.cands if not x)
                h1 += any(s < ge and gs < e for s, e, *_ in r.cands)
        c0 = sum(not c[4] for r in rs for c in r.cands)
        c1 = sum(c[4] for r in rs for c in r.cands)
        print(f"| {origin} | {len(rs)} | {n} | {_pct(h0, n)} | {_pct(h1, n)} | {c0 / len(rs):.2f} "
              f"| {c1 / len(rs):.2f} |")


def within_origin(rows: list[Row], budget: float) -> None:
    """5 folds of near-duplicate groups inside every origin (pii-dev and chat); C / threshold on an inner fold."""
    pool = [r for r in rows if r.kind in ("pii", "chat") and r.origin != DATAGEN_ORIGIN]
    generated = [r for r in rows if r.origin == DATAGEN_ORIGIN]
    out: dict[int, np.ndarray] = {}
    thr_by: dict[int, float] = {}
    picks = []
    for k in range(FOLDS):
        test = [r for r in pool if fold_of(r) == k]
        val = [r for r in pool if fold_of(r) == (k + 1) % FOLDS]
        train = [r for r in pool if fold_of(r) not in (k, (k + 1) % FOLDS)] + generated
        m, thr, c = train_and_pick(train, val, budget)
        picks.append((thr, c, EXTRA_MARGIN[0]))
        for r in test:
            out[id(r)] = probs(m, r)
            thr_by[id(r)] = thr
            MARGIN_OF[id(r)] = EXTRA_MARGIN[0]
    HELD_OUT_NAMES.clear()
    table(f"within-origin (every row scored by the fold that held its group out; thresholds / C / extra margin per "
          f"fold: {', '.join(f'{t:.3f} / {c} / {x}' for t, c, x in picks)})", pool, [out[id(r)] for r in pool],
          lambda r: thr_by[id(r)], "")
    MARGIN_OF.clear()


def by_origin(rows: list[Row], budget: float) -> None:
    """A whole pii-dev origin and the never-read chat origins held out; validation inside the training origins."""
    pii_origins = sorted({r.origin for r in rows if r.kind == "pii" and r.origin != DATAGEN_ORIGIN})
    for held_pii in pii_origins:
        train_pool = [r for r in rows if (r.kind == "pii" and r.origin not in (held_pii, DATAGEN_ORIGIN))
                      or (r.kind == "chat" and r.origin not in CHAT_HELD_OUT)]
        val = [r for r in train_pool if fold_of(r) == 0]
        train = [r for r in train_pool if fold_of(r) != 0] + [r for r in rows if r.origin == DATAGEN_ORIGIN]
        m, thr, c = train_and_pick(train, val, budget)
        test = [r for r in rows if r.origin == held_pii or r.origin in CHAT_HELD_OUT or r.kind in ("eval", "clean")]
        HELD_OUT_NAMES.clear()
        HELD_OUT_NAMES.update({held_pii, *CHAT_HELD_OUT})
        table(f"by origin: `{held_pii}` and chat {', '.join(CHAT_HELD_OUT)} held out (threshold {thr:.3f}, C {c}, "
              f"extra margin {EXTRA_MARGIN[0]}, "
              "picked on a validation fifth of the training origins)", test, [probs(m, r) for r in test],
              lambda r, t=thr: t, "**held out** ")


def final(rows: list[Row], budget: float, out: Path) -> None:
    """The shipped model: trained on pii-dev and the dev chat origins, threshold / C on a validation fifth."""
    pool = [r for r in rows if (r.kind == "pii" and r.origin != DATAGEN_ORIGIN)
            or (r.kind == "chat" and r.origin not in CHAT_HELD_OUT)]
    val = [r for r in pool if fold_of(r) == 0]
    train = [r for r in pool if fold_of(r) != 0] + [r for r in rows if r.origin == DATAGEN_ORIGIN]
    model, thr, c = train_and_pick(train, val, budget)
    margin = EXTRA_MARGIN[0]
    EXTRA_MARGIN[0] = 10.0  # no extra candidate counts: the threshold for the head's own names alone
    thr_head_only = pick_threshold(val, [probs(model, r) for r in val], budget)
    EXTRA_MARGIN[0] = margin
    data = {
        "feature_version": VERSION[0],
        "scalars": list(scalars_of(VERSION[0])),
        "kind": KIND[0] if model.hw is None else f"{KIND[0]}: {SEEDS[0]} nets of {HIDDEN[0]} ReLU units on {PCA[0]} PCA "
        f"components of the token-state features and the scalars, logits averaged, {EPOCHS[0]} epochs",
        "trained_on": "pii-dev (both presidio origins), modelbuild/pii/datagen.py requests (seed 31), jailbreak-dev "
        "benign " + ", ".join(CHAT_DEV) + ", Quora / STS-en training samples (modelbuild/pii/train_person.py)",
        "C": c,
        "chat_budget": budget,
        "threshold": round(thr, 6),
        **({} if FLOOR[0] is None else {"candidate_floor": FLOOR[0], "capitalised_runs": FLOOR[1],
                                        "extra_threshold": round(thr + EXTRA_MARGIN[0], 6),
                                        "threshold_without_candidates": round(thr_head_only, 6)}),
        "intercept": model.b,
        "mean": [round(float(v), 6) for v in model.mean],
        "scale": [round(float(v), 6) for v in model.scale],
        "coef": [round(float(v), 6) for v in model.coef],
        **({} if model.hw is None or model.hb is None else {
            "hidden_b": [round(float(v), 6) for v in model.hb],
            "hidden_w": [[float(f"{v:.4g}") for v in row] for row in model.hw]}),
        **({} if model.skip is None else {"skip": [round(float(v), 6) for v in model.skip]}),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / PERSON_MODEL_FILE).write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(f"wrote {out / PERSON_MODEL_FILE}: threshold {thr:.4f} (without extra candidates {thr_head_only:.4f}), C {c}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=str(ROOT / "models"))
    ap.add_argument("--cache", default=str(ROOT / "build" / "pii_person_cache"))
    ap.add_argument("--out", default=str(ROOT / "modelbuild" / "artifacts"))
    ap.add_argument("--chat-budget", type=float, default=0.015,
                    help="share of validation chat prompts that may be flagged (any entity) at the threshold")
    ap.add_argument("--report", action="store_true", help="print the within-origin and by-origin tables")
    ap.add_argument("--floor", type=float, default=0.1,
                    help="candidates.py's extra PERSON candidates: words with PERSON probability >= floor "
                    "(shipped 0.1)")
    ap.add_argument("--no-candidates", action="store_true",
                    help="the head's own names only (the ninth session's model, with a constant `extra` feature)")
    ap.add_argument("--capitalised", action="store_true",
                    help="extra candidates also from runs of capitalised words (measured, not shipped)")
    ap.add_argument("--ceiling", action="store_true", help="print only the candidates' coverage of gold names")
    ap.add_argument("--extra-margins", default="0,0.05,0.1,0.15",
                    help="comma-separated margins over the threshold an extra candidate needs; picked with C on the "
                    "validation part")
    ap.add_argument("--rule", choices=("or", "learned", "cue"), default="cue",
                    help="cue (shipped): a record, a cue word or the model; learned: a record or the model; or: "
                    "today's policy (census full names included) or the model")
    ap.add_argument("--features", type=int, choices=(2, 3), default=FEATURE_VERSION,
                    help="feature version of person_model.py (3: eleventh session, shipped; 2: the tenth's)")
    ap.add_argument("--model", choices=("mix", "mlp", "logistic"), default="mix",
                    help="mix (eleventh session, shipped): a logistic and the nets, logits averaged (C picked on "
                    "validation, the nets' penalty --mix-alpha); mlp: the nets alone; logistic: the ninth/tenth "
                    "sessions' check")
    ap.add_argument("--mix-alpha", type=float, default=1.0, help="mix: the nets' L2 penalty")
    ap.add_argument("--hidden", type=int, default=64, help="mlp/mix: hidden units per net")
    ap.add_argument("--seeds", type=int, default=3, help="mlp/mix: nets trained with different seeds, logits averaged")
    ap.add_argument("--epochs", type=int, default=50, help="mlp/mix: epochs per net")
    ap.add_argument("--pca", type=int, default=64,
                    help="mlp: the token-state features enter the nets as their first PCA components (folded into "
                    "the first layer of the artifact)")
    ap.add_argument("--alphas", default="0.1,1.0,3.0", help="mlp: L2 penalties picked from on validation")
    args = ap.parse_args()
    RULE[0] = args.rule
    KIND[0], HIDDEN[0], SEEDS[0], EPOCHS[0], VERSION[0] = args.model, args.hidden, args.seeds, args.epochs, args.features
    PCA[0], MIX_ALPHA[0] = args.pca, args.mix_alpha
    GRID[0] = tuple(float(a) for a in args.alphas.split(",")) if args.model == "mlp" else CS
    MARGINS[0] = tuple(float(m) for m in args.extra_margins.split(","))
    FLOOR[:] = [None if args.no_candidates else args.floor, args.capitalised]
    rows = load_rows()
    extract(rows, Path(args.models), Path(args.cache), FLOOR[0], FLOOR[1], VERSION[0])
    if args.ceiling:
        ceiling(rows)
        return
    if args.report:
        print(summary(rows))
        ceiling(rows)
        within_origin(rows, args.chat_budget)
        by_origin(rows, args.chat_budget)
    final(rows, args.chat_budget, Path(args.out))


if __name__ == "__main__":
    main()
