"""A second opinion from the multilingual encoder's head for English prompts the MiniLM category head is unsure of.

    python -m modelbuild.category_ensemble        (needs `make models`; embeddings cached under build/)

Fusion (semrouter/signals/onnx/analyzer.py applies it): when the MiniLM head's top probability is below `gate`,
the e5 head (models/e5, the one that serves `signals.multilingual.languages`) is run too and

    p = softmax((log p_minilm + weight * log p_e5) / temperature)

replaces the MiniLM probabilities; a confident MiniLM answer is kept as it is (no e5 pass). `gate` and `weight` are
chosen by accuracy on the validation slice of the evaluation pass (rows neither head trained on: the MiniLM head's
`category_fit.is_val` slice, which the e5 head built here also leaves out), the smaller gate winning ties within
0.1 point (fewer e5 passes); `temperature` minimises the NLL of the fused validation rows and is then multiplied
by the MiniLM head's calibration factor (train_category: fitted on an unseen source), so fused and unfused rows
share one scale.

Two passes, as train_category.py:
1. by source: MiniLM evaluation head (train_category's training part) + an e5 head on the same English rows and
   the Japanese training rows; measured on the held-out parts (MMLU 20% hash split, MMLU-Pro sources never
   trained on, tldr, natural).
2. within source: both heads on every labelled row outside 20% of the near-duplicate groups
   (category_data.within_source_split); measured on those 20%.
The fusion settings of pass 1's validation slice are applied to both passes (and ship); pass 2's own choice is
reported beside them. Also reported: the share of rows that take the e5 pass, and the Japanese routing threshold
of the shipped e5 head that keeps confident-and-wrong at `--ja-target` of the Japanese validation rows.
Writes build/category-ensemble/metrics.json (gitignored) and prints the tables for RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from modelbuild.category_data import LABELS, load_mix, within_source_split
from modelbuild.category_fit import Settings, embed_rows, fit_head, is_val
from modelbuild.heads import ROOT, ece, softmax
from modelbuild.train_category import MMLU, _calibration_factor
from modelbuild.train_e5_category import Fitted, choose_threshold, japanese_rows, validation_split

OUT = ROOT / "build" / "category-ensemble"
GATES = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01)
WEIGHTS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)


def fuse(pm: np.ndarray, pe: np.ndarray, gate: float, weight: float, temperature: float) -> np.ndarray:
    """[N,14] fused probabilities: rows whose MiniLM top probability is below `gate` mix in the e5 head."""
    z = (np.log(pm + 1e-12) + weight * np.log(pe + 1e-12)) / temperature
    f = softmax(z)
    take = pm.max(1) < gate
    return np.where(take[:, None], f, pm)


def fit_temperature(pm: np.ndarray, pe: np.ndarray, y: np.ndarray, weight: float) -> float:
    """The temperature minimising the NLL of the fused mix on (pm, pe, y) (grid 0.2..10, log-spaced)."""
    z = np.log(pm + 1e-12) + weight * np.log(pe + 1e-12)
    grid = np.exp(np.linspace(np.log(0.2), np.log(10.0), 300))
    nll = [-float(np.mean(np.log(softmax(z / t)[np.arange(len(y)), y] + 1e-12))) for t in grid]
    return float(grid[int(np.argmin(nll))])


def choose(pm: np.ndarray, pe: np.ndarray, y: np.ndarray, factor: float) -> dict[str, float]:
    """gate, weight (validation accuracy; smallest gate within 0.1 point of the best) and temperature."""
    cands = []
    for w in WEIGHTS:
        t = fit_temperature(pm, pe, y, w)
        for g in GATES:
            acc = float((fuse(pm, pe, g, w, t).argmax(1) == y).mean())
            cands.append((acc, g, w, t))
    best = max(c[0] for c in cands)
    acc, g, w, t = min((c for c in cands if c[0] >= best - 0.001), key=lambda c: (c[1], -c[0]))
    return {"gate": g, "weight": w, "temperature_val": round(t, 4), "temperature": round(t * factor, 4),
            "val_accuracy": round(acc, 4), "val_accuracy_minilm": round(float((pm.argmax(1) == y).mean()), 4),
            "val_accuracy_e5": round(float((pe.argmax(1) == y).mean()), 4)}


def _y(rows: list[dict]) -> np.ndarray:
    return np.array([LABELS.index(r["category"]) for r in rows], np.int64)


def part(rows: list[dict], pm: np.ndarray, pe: np.ndarray, s: dict[str, float]) -> dict[str, object]:
    """MiniLM / e5 / fused accuracy, stratified, ECE, share taking the e5 pass, confident-wrong at 0.5."""
    y = _y(rows)
    pf = fuse(pm, pe, s["gate"], s["weight"], s["temperature"])
    out: dict[str, object] = {"n": len(rows), "e5_share": round(float((pm.max(1) < s["gate"]).mean()), 4)}
    for name, p in (("minilm", pm), ("e5", pe), ("fused", pf)):
        pred = p.argmax(1)
        per = [float((pred[y == k] == k).mean()) for k in range(len(LABELS)) if (y == k).any()]
        conf = p.max(1) >= 0.5
        out[name] = {"accuracy": round(float((pred == y).mean()), 4), "stratified": round(float(np.mean(per)), 4),
                     "ece": round(ece(p, y), 4), "confident": round(float(conf.mean()), 4),
                     "confident_wrong": round(float((conf & (pred != y)).mean()), 4)}
    return out


def by_source(rows: list[dict], pm: np.ndarray, pe: np.ndarray, s: dict[str, float], key) -> dict[str, object]:  # type: ignore[no-untyped-def]
    out = {}
    for src in sorted({key(r) for r in rows}):
        idx = [j for j, r in enumerate(rows) if key(r) == src]
        out[src] = part([rows[j] for j in idx], pm[idx], pe[idx], s)
    return out


def _conf(p: np.ndarray, y: np.ndarray, t: float) -> dict[str, float]:
    """Confident share, accuracy when confident, confident-and-wrong share of all rows at threshold `t`."""
    pred, c = p.argmax(1), p.max(1) >= t
    return {"n": len(y), "confident": round(float(c.mean()), 4),
            "accuracy_when_confident": round(float((pred[c] == y[c]).mean()) if c.any() else 0.0, 4),
            "confident_wrong": round(float((c & (pred != y)).mean()), 4)}


def _origin(r: dict) -> str:
    s = r["source"]
    return s.split("-", 1)[0] if s.startswith("pro:") else s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--ja-target", type=float, default=0.03,
                    help="confident-and-wrong share of the Japanese validation rows the threshold aims at (0.03)")
    ap.add_argument("--within-only", metavar="JSON", default=None,
                    help="run only pass 2 with these settings ({\"gate\", \"weight\", \"temperature\", "
                    "\"factor\"}: pass 1's choice and calibration factor, as it printed them)")
    args = ap.parse_args(argv)
    st = Settings(models=args.models)
    mix = load_mix(MMLU)
    train = mix.train
    tests = {k: v for k, v in mix.held_out.items() if v}
    labelled = train + [r for k, v in tests.items() if k != "natural" for r in v]
    everything = labelled + tests.get("natural", [])  # same order as train_category: its embedding cache
    pos = {r["text"]: i for i, r in enumerate(everything)}
    x32, x1 = embed_rows(everything, args.models, (), 32), embed_rows(everything, args.models, (), 1)

    def xs(rows: list[dict], x: np.ndarray) -> np.ndarray:
        return x[[pos[r["text"]] for r in rows]]

    ja = japanese_rows()
    ja_train, ja_test = within_source_split(ja, 20)
    jt_train, jt_val = validation_split(ja_train)
    metrics: dict[str, object] = {}

    def one_pass(name: str, rows: list[dict], held: dict[str, list[dict]], factor: float | None,
                 settings: dict[str, float] | None) -> tuple[float, dict[str, float]]:
        print(f"== {name}: MiniLM head", flush=True)
        mh = fit_head(rows, xs(rows, x32), st)
        if factor is None:
            factor = _calibration_factor(mh, tests["pro"], xs(tests["pro"], x1))
        mh.scale_temperature(factor)
        val = [r for r in rows if is_val(r)]
        fit = [r for r in rows if not is_val(r)]
        assert mh.val_mix is not None and mh.lex is not None
        pm_val = softmax(mh.val_mix / mh.lex.t2)
        print(f"== {name}: e5 head ({len(fit)} English + {len(jt_train)} Japanese rows)", flush=True)
        eh = Fitted(fit + jt_train, val + jt_val)
        pe_val = eh.probs([r["text"] for r in val])
        own = choose(pm_val, pe_val, _y(val), factor)
        s = settings or own
        rep: dict[str, object] = {"calibration_factor": round(factor, 4), "own_choice": own, "applied": s,
                                  "validation": part(val, pm_val, pe_val, s)}
        saved: dict[str, np.ndarray] = {"validation_pm": pm_val, "validation_pe": pe_val, "validation_y": _y(val)}
        for pname, prow in held.items():
            pm = mh.probs(xs(prow, x1), [r["text"] for r in prow])
            pe = eh.probs([r["text"] for r in prow])
            saved |= {f"{pname}_pm": pm, f"{pname}_pe": pe, f"{pname}_y": _y(prow),
                      f"{pname}_source": np.array([r["source"] for r in prow])}
            rep[pname] = part(prow, pm, pe, s)
            rep[pname + "_by_origin"] = by_source(prow, pm, pe, s, _origin)
            if pname in ("pro", "pro_within"):
                rep[pname + "_by_source"] = by_source(prow, pm, pe, s, lambda r: r["source"])
            f = rep[pname]
            print(f"{pname:14s} n={len(prow):5d} e5 share {f['e5_share']:.3f}  " + "  ".join(
                f"{k} {f[k]['accuracy']:.4f} ({f[k]['stratified']:.4f}) ece {f[k]['ece']:.3f} cw {f[k]['confident_wrong']:.3f}"
                for k in ("minilm", "e5", "fused")), flush=True)
        if name == "by_source":  # Japanese within source: this e5 head never saw ja_test (nor jt_val)
            pjv, pjt = eh.probs([r["text"] for r in jt_val]), eh.probs([r["text"] for r in ja_test])
            jr: dict[str, object] = {}
            for tgt in (0.05, args.ja_target):
                t = choose_threshold(pjv, _y(jt_val), tgt)
                jr[f"target_{tgt}"] = {"threshold": t, "val": _conf(pjv, _y(jt_val), t), "test": _conf(pjt, _y(ja_test), t)}
            jr["test_accuracy"] = round(float((pjt.argmax(1) == _y(ja_test)).mean()), 4)
            rep["japanese_within_source"] = jr
            saved |= {"ja_val_pe": pjv, "ja_val_y": _y(jt_val), "ja_test_pe": pjt, "ja_test_y": _y(ja_test)}
            print(json.dumps({"japanese_within_source": jr}), flush=True)
        metrics[name] = rep
        OUT.mkdir(parents=True, exist_ok=True)
        np.savez(OUT / f"{name}.npz", **saved)  # to apply other settings later (`report_saved`)
        return factor, s

    if args.within_only:
        given = json.loads(args.within_only)
        factor, shipped = float(given.pop("factor")), given
    else:
        factor, shipped = one_pass("by_source", train, tests, None, None)
        print("chosen on validation:", json.dumps(metrics["by_source"]["own_choice"]),  # type: ignore[index]
              "factor", factor, flush=True)
    w_train, w_test = within_source_split(labelled)
    parts = {"all_within": w_test}
    for p in ("mmlu", "pro", "chat"):
        parts[p + "_within"] = [r for r in w_test if r["source"].split(":")[0] == p]
    parts["natural_within"] = [r for r in w_test if r["source"] == "natural"]
    one_pass("within_source", w_train, parts, factor, shipped)
    if args.within_only:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "within.json").write_text(json.dumps(metrics, indent=1) + "\n")
        print(f"wrote {OUT / 'within.json'}")
        return 0

    # Japanese: the shipped e5 head's threshold for `--ja-target` on the validation rows it never trained on
    import onnxruntime as ort

    from modelbuild.e5_embed import embed_e5

    sess = ort.InferenceSession(str(args.models / "e5" / "e5_category_head.onnx"), providers=["CPUExecutionProvider"])
    ev = embed_e5([r["text"] for r in jt_val])
    pj = np.concatenate([sess.run(["probs"], {"embedding": e[None, :]})[0] for e in ev])
    yj = _y(jt_val)
    jrep: dict[str, object] = {"target": args.ja_target, "val_n": len(jt_val)}
    for tgt in (0.05, args.ja_target, 0.03):
        t = choose_threshold(pj, yj, tgt)
        c = pj.max(1) >= t
        jrep[f"shipped_threshold_at_{tgt}"] = {"threshold": t, "val_confident": round(float(c.mean()), 4),
                                               "val_confident_wrong": round(float((c & (pj.argmax(1) != yj)).mean()), 4)}
    metrics["japanese"] = jrep
    print(json.dumps({"japanese": jrep}, indent=1))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(f"wrote {OUT / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
