"""Train the category head on encoder embeddings; write modelbuild/artifacts/category_head.*.

    python -m modelbuild.train_category [--data ../shared/data/mmlu-dev.jsonl.gz] [--layers 3,4,5]

Data: the mix of modelbuild/category_data.py -- MMLU stems (80% train / 20% held out by a hash of the text),
MMLU-Pro questions not from MMLU (whole sources held out), public chat prompts whose category is clear from
their origin (one origin held out), and the natural chat requests in modelbuild/data/natural_requests.jsonl
(their eval twin is never trained on). `--no-pro` / `--no-chat` train without those parts.

Three passes with the same settings (modelbuild/category_fit.py does one fit):
1. evaluation: trained on the training part only; its numbers on the held-out parts (whole sources never
   seen) are the honest ones and go to the top level of metrics.json;
2. within-source (`--no-within-source` skips it): every labelled row but the natural eval set, 20% of the
   near-duplicate groups held out in every source at once (category_data.within_source_split): what
   seeing a source is worth, as the judges' within-source check measures it (labelled `within_source`);
3. final (`--no-final` keeps the evaluation head): trained on every labelled row but the natural eval set
   (the held-out MMLU, MMLU-Pro and tldr rows too): the head that ships (`shipped` in metrics.json: its
   natural-eval numbers, the only part it never saw).

Model: an MLP (1024 hidden, input dropout 0.1, hidden dropout 0.5, weight decay 0.5) trained on
FINE classes -- the 57 MMLU subjects, one "natural:<category>" class per category for the natural
requests, one class per MMLU-Pro source and chat origin in training -- whose calibrated probabilities
are summed into the 14 categories inside the ONNX graph. `--members N` (2) trains N such MLPs (seeds 0..N-1) and averages their fine logits; `--fp16-mlp`
(default; `--no-fp16-mlp` turns it off) stores the MLP weights as float16 (rounded before calibration, so the
measured numbers are the shipped ones; two members stay at 4.2 MB). Two members were chosen on the validation
slice (0.8523 -> 0.8551, with lower NLL and calibration error; 2 x 768 tied on accuracy). Unless `--no-lexical`, a second, lexical
classifier joins it (modelbuild/lexical.py: logistic regression on idf-weighted word-piece unigrams and
bigrams of the router's own `input_ids`): probs = softmax((log p_mlp + beta * log p_lex) / T2), beta
and T2 picked on the validation slice (`--refit` then refits both on training + validation rows). The head then takes `embedding`, `input_ids` and
`attention_mask` and still outputs `probs` [B,14]; the script checks onnxruntime against numpy.
Unless `--no-memory`, an exemplar memory joins the mix (modelbuild/category_memory.py): the 2-bit quantised
sentence embeddings of every training row (no text), whose 20 nearest rows by cosine vote for a category;
probs = softmax((log p_mlp + beta * log p_lex + gamma * log p_knn) / T2), gamma chosen with beta on the
validation slice (whose rows do not see their own near-duplicate group in the memory). Unless
`--no-calibrate`, T2 is then multiplied by a factor fitted on a source the evaluation head never saw: the
temperature minimising NLL(validation slice) + NLL(held-out MMLU-Pro stemez subjects), divided by the
validation slice's own; every pass uses the same factor (the final head has no unseen source left to fit on).
The other held-out parts (theoremQA, scibench, tldr, natural; Japanese in bench_routing_mix.py) are reported
before and after it without having been used (metrics.json: `before_calibration`, `pro_not_calibration_*`).
`--layers 3,4,5` also feeds those rows of the encoder's `layer_means` (L2-normalised, as the complexity head
reads them) to the MLP; the head then also takes `layer_means` [B,7,384].
Embeddings come from the built int8 encoder (run `python -m modelbuild.build_all` first).
Reports accuracy, ECE and per-category F1 on every held-out part (MMLU also stratified: the mean of the
per-category accuracies; MMLU-Pro also per source) and exits non-zero under the targets (issue 15: 85%
stratified MMLU, 85% MMLU-Pro non-MMLU sources, 90% natural).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from modelbuild.category_data import LABELS, load_mix, within_source_split
from modelbuild.category_fit import FittedHead, Settings, embed_rows, fit_head
from modelbuild.heads import ARTIFACTS, ROOT, ece, f1_per_class, write_labels

__all__ = ["LABELS", "main"]

MMLU = Path(__file__).resolve().parents[2] / "shared" / "data" / "mmlu-dev.jsonl.gz"
TARGETS = {"mmlu_stratified": 0.85, "pro": 0.85, "natural": 0.90}
EVAL_HEAD = ROOT / "build" / "category-eval" / "category_head.onnx"  # gitignored


def _part_report(name: str, rows: list[dict], p: np.ndarray, by_source: bool) -> dict[str, object]:
    """Accuracy, ECE, stratified accuracy, per-category F1 (and per source) of probabilities `p` [N,14]."""
    y = np.array([LABELS.index(r["category"]) for r in rows], dtype=np.int64)
    pred = p.argmax(1)
    acc = float((pred == y).mean())
    per_cat = {LABELS[k]: round(float((pred[y == k] == k).mean()), 4) for k in range(len(LABELS)) if (y == k).any()}
    out: dict[str, object] = {
        f"{name}_accuracy": round(acc, 4), f"{name}_ece": round(ece(p, y), 4), f"{name}_n": len(y),
        f"{name}_stratified": round(float(np.mean(list(per_cat.values()))), 4),
        f"{name}_per_category": per_cat,
        f"{name}_f1": {c: round(v, 3) for c, v in zip(LABELS, f1_per_class(y, pred, len(LABELS)), strict=True)
                       if (y == LABELS.index(c)).any()},
    }
    if by_source:
        srcs = sorted({r["source"] for r in rows})
        out[f"{name}_by_source"] = {
            s_: {"accuracy": round(float(np.mean([pred[j] == y[j] for j, r in enumerate(rows) if r["source"] == s_])), 4),
                 "n": sum(1 for r in rows if r["source"] == s_)} for s_ in srcs}
    print(f"{name:18s} n={len(y):5d} accuracy={acc:.4f} ece={ece(p, y):.4f} stratified={out[f'{name}_stratified']:.4f}")
    return out


def _is_calibration_source(r: dict) -> bool:
    """The held-out MMLU-Pro stemez subjects: the unseen source the calibration factor is fitted on (theoremQA,
    scibench, tldr, natural and Japanese stay unused by it)."""
    return r["source"].startswith("pro:stemez")


def _calibration_factor(ev: FittedHead, pro: list[dict], x_pro: np.ndarray) -> float:
    """T / t2_val, where T minimises NLL(validation slice) + NLL(held-out stemez subjects) of the evaluation
    head's mix (equal weight to text like the training rows and to a source it never saw) and t2_val is the
    temperature the validation slice alone chose: a temperature fitted on the rows the head was trained on (or
    their near neighbours) is too low for text unlike them. The same factor scales every pass's temperature."""
    from modelbuild.heads import softmax

    idx = [j for j, r in enumerate(pro) if _is_calibration_source(r)]
    rows = [pro[j] for j in idx]
    zc = ev.mix_logits(x_pro[idx], [r["text"] for r in rows])
    yc = np.array([LABELS.index(r["category"]) for r in rows])
    assert ev.val_mix is not None and ev.lex is not None
    zv, yv = ev.val_mix, ev.val_y

    def nll(z: np.ndarray, y: np.ndarray, t: float) -> float:
        return -float(np.mean(np.log(softmax(z / t)[np.arange(len(y)), y] + 1e-12)))

    grid = np.exp(np.linspace(np.log(0.2), np.log(10.0), 400))
    t = float(grid[int(np.argmin([nll(zv, yv, t) + nll(zc, yc, t) for t in grid]))])
    print(f"calibration: joint temperature {t:.3f} on {len(yv)} validation + {len(yc)} held-out stemez rows; "
          f"validation alone {ev.lex.t2_val:.3f}")
    return t / ev.lex.t2_val


def _pro_split_report(pro: list[dict], p: np.ndarray) -> dict[str, object]:
    """ECE and accuracy of the held-out MMLU-Pro rows outside the calibration source (theoremQA, scibench)."""
    idx = [j for j, r in enumerate(pro) if not _is_calibration_source(r)]
    out = _part_report("pro_not_calibration", [pro[j] for j in idx], p[idx], by_source=False)
    return {k: v for k, v in out.items() if k.endswith(("_accuracy", "_ece", "_n", "_stratified"))}


def _origin(source: str) -> str:
    """`pro:theoremQA-Math` -> `pro:theoremQA`; other sources unchanged."""
    return source.split("-", 1)[0] if source.startswith("pro:") else source


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="train the category head")
    ap.add_argument("--data", type=Path, default=MMLU)
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--hidden", type=int, default=1024, help="MLP hidden units")
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--weight-decay", type=float, default=0.5)
    ap.add_argument("--members", type=int, default=2,
                    help="fine MLPs (seeds 0..N-1) whose logits are averaged inside the head (2)")
    ap.add_argument("--fp16-mlp", action=argparse.BooleanOptionalAction, default=True,
                    help="store the MLP weights as float16 in the ONNX head (rounded before calibration; default on)")
    ap.add_argument("--fp16-lexical", action=argparse.BooleanOptionalAction, default=False,
                    help="store the word-piece regression's weights as float16 too (rounded before calibration)")
    ap.add_argument("--layers", default="", help="rows of the encoder's layer_means the MLP also reads, e.g. 3,4,5")
    ap.add_argument("--out", type=Path, default=ARTIFACTS)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--no-lexical", action="store_true", help="embedding MLP only (no word-piece branch)")
    ap.add_argument("--lexical-c", type=float, default=10.0, help="inverse L2 strength of the lexical regression")
    ap.add_argument("--lexical-min-df", type=int, default=3)
    ap.add_argument("--no-pro", action="store_true", help="train without the MMLU-Pro rows (still measured)")
    ap.add_argument("--no-chat", action="store_true", help="train without the chat prompts (still measured)")
    ap.add_argument("--refit", action="store_true",
                    help="once temperature and mix are chosen, refit both models on fit + val rows "
                         "(measured: 84.7%% MMLU / 90.3%% natural vs 84.9%% / 91.6%% without; not the default)")
    ap.add_argument("--no-within-source", action="store_true", help="skip the within-source pass")
    ap.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                    help="the exemplar memory's vote joins the mix (modelbuild/category_memory.py; default on)")
    ap.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=True,
                    help="scale every head's mix temperature by the factor fitted on a held-out source "
                         "(default on; see the module doc)")
    ap.add_argument("--no-final", action="store_true", help="ship the evaluation head (no fit on all rows)")
    args = ap.parse_args(argv)
    layers = tuple(int(v) for v in args.layers.split(",") if v.strip())
    st = Settings(models=args.models, hidden=args.hidden, epochs=args.epochs, weight_decay=args.weight_decay,
                  members=args.members, fp16=args.fp16_mlp, fp16_lexical=args.fp16_lexical,
                  lexical=not args.no_lexical, lexical_c=args.lexical_c,
                  lexical_min_df=args.lexical_min_df, refit=args.refit, layers=layers, memory=args.memory)

    def keep(r: dict) -> bool:
        return not ((args.no_pro and r["source"].startswith("pro:")) or (args.no_chat and r["source"].startswith("chat:")))

    mix = load_mix(args.data)
    train = [r for r in mix.train if keep(r)]
    tests = {k: v for k, v in mix.held_out.items() if v}
    assert not {r["text"] for r in train} & {r["text"] for v in tests.values() for r in v}, "held-out leak"
    labelled = train + [r for k, v in tests.items() if k != "natural" for r in v if keep(r)]
    # Head inputs of every row twice: batches of 32 for training (fast), one text per encoder run for scoring,
    # as the router embeds a request (the int8 encoder quantises activations per batch; the batched training
    # embeddings once read 85.34% on held-out MMLU where the router measured 84.99%).
    everything = labelled + tests.get("natural", [])
    pos = {r["text"]: i for i, r in enumerate(everything)}
    x32, x1 = embed_rows(everything, args.models, layers, 32), embed_rows(everything, args.models, layers, 1)

    def xs(rows: list[dict], x: np.ndarray) -> np.ndarray:
        return x[[pos[r["text"]] for r in rows]]

    def score(head: FittedHead, rows: list[dict]) -> np.ndarray:
        return head.probs(xs(rows, x1), [r["text"] for r in rows])

    report: dict[str, object] = {"model": "fine-subjects", "hidden": args.hidden, "mlp_members": args.members,
                                 "mlp_fp16": bool(args.fp16_mlp),
                                 "lexical_fp16": bool(args.fp16_lexical), "epochs": args.epochs,
                                 "weight_decay": args.weight_decay, "layers": list(layers),
                                 "refit_on_val": bool(args.refit)}
    print("== evaluation head (held-out parts never trained on)")
    ev = fit_head(train, xs(train, x32), st)
    report.update({"temperature": ev.temperature, "fine_classes": int(ev.group.shape[0]),
                   "train_rows": ev.fit_rows, "val_rows": ev.val_rows,
                   "train_rows_by_part": {p: sum(1 for r in train if r["source"].split(":")[0] == p)
                                          for p in ("mmlu", "pro", "chat", "natural")}})
    if ev.lex is not None:
        report.update(ev.lex.report())
    factor = 1.0
    if args.calibrate and ev.lex is not None and ev.val_mix is not None:
        factor = _calibration_factor(ev, tests["pro"], xs(tests["pro"], x1))
        print("== evaluation head before the calibration transfer (temperature chosen on the validation slice)")
        before = {}
        for name, rows in tests.items():
            before.update(_part_report(name, rows, score(ev, rows), by_source=False))
        before.update(_pro_split_report(tests["pro"], score(ev, tests["pro"])))
        report["before_calibration"] = {k: v for k, v in before.items() if k.endswith(("_ece", "_accuracy", "_n"))}
        ev.scale_temperature(factor)
        print(f"== evaluation head, mix temperature x {factor:.3f}")
    report["calibration_factor"] = round(factor, 4)
    for name, rows in tests.items():
        report.update(_part_report(name, rows, score(ev, rows), by_source=name == "pro"))
    report.update(_pro_split_report(tests["pro"], score(ev, tests["pro"])))
    yv = ev.val_y
    report.update({"val_accuracy": round(float((ev.val_probs.argmax(1) == yv).mean()), 4),
                   "val_ece": round(ece(ev.val_probs, yv), 4), "val_n": len(yv)})
    report["mmlu_stratified_accuracy"] = report.get("mmlu_stratified", 0.0)
    if not args.no_within_source:
        print("== within-source head (20% of near-duplicate groups held out in every source)")
        w_train, w_test = within_source_split(labelled)
        wh = fit_head(w_train, xs(w_train, x32), st)
        if factor != 1.0:
            wh.scale_temperature(factor)
        unseen = {r["source"] for k in ("pro", "chat") for r in tests.get(k, [])}  # never seen by the evaluation head
        origin = [_origin(r["source"]) + (" (unseen in evaluation)" if r["source"] in unseen else "") for r in w_test]
        p_all = score(wh, w_test)
        within = _part_report("all", w_test, p_all, by_source=False)
        for part in ("mmlu", "pro", "chat"):
            idx = [j for j, r in enumerate(w_test) if r["source"].split(":")[0] == part]
            if idx:
                within.update(_part_report(part, [w_test[j] for j in idx], p_all[idx], by_source=part == "pro"))
        right = p_all.argmax(1) == np.array([LABELS.index(r["category"]) for r in w_test])
        by_origin = {o: {"accuracy": round(float(right[[j for j, v in enumerate(origin) if v == o]].mean()), 4),
                         "n": origin.count(o)} for o in sorted(set(origin))}
        for o, v in by_origin.items():
            print(f"   within-source {o:48s} n={v['n']:5d} accuracy={v['accuracy']:.4f}")
        within["by_origin"] = by_origin
        within["train_rows"] = len(w_train)
        report["within_source"] = within
    head = ev
    if not args.no_final:
        print("== final head (every labelled row but the natural eval set): ships")
        head = fit_head(labelled, xs(labelled, x32), st)
        if factor != 1.0:
            head.scale_temperature(factor)
        shipped: dict[str, object] = {"train_rows": head.fit_rows, "val_rows": head.val_rows,
                                      "temperature": head.temperature}
        if head.lex is not None:
            shipped.update(head.lex.report())
        if "natural" in tests:
            shipped.update(_part_report("natural", tests["natural"], score(head, tests["natural"]), by_source=False))
        report["shipped"] = shipped
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        check = tests["mmlu"][:300]
        head.export(args.out / "category_head.onnx", args.fp16_mlp, xs(check, x1), [r["text"] for r in check],
                    args.fp16_lexical)
        if head is not ev:  # the evaluation head, for benchmarks/bench_routing_mix.py --category-head
            EVAL_HEAD.parent.mkdir(parents=True, exist_ok=True)
            ev.export(EVAL_HEAD, args.fp16_mlp, xs(check, x1), [r["text"] for r in check], args.fp16_lexical)
            print(f"wrote the evaluation head to {EVAL_HEAD}")
        write_labels(args.out / "category_head.labels.json", LABELS)
        (args.out / "category_head.metrics.json").write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}/category_head.onnx ({(args.out / 'category_head.onnx').stat().st_size} bytes)")
    ok = all(float(report.get(f"{k}_accuracy", 0.0)) >= v for k, v in TARGETS.items())  # type: ignore[arg-type]
    if not ok:
        print(f"below targets {TARGETS}", file=sys.stderr)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
