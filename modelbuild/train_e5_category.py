"""Train the category head on the multilingual encoder (models/e5); write modelbuild/artifacts/e5/e5_category_head.*.

    python -m modelbuild.train_e5_category        (needs models/e5: `make models`; embeddings cached, e5_embed.py)

Rows: the English mix of modelbuild/category_data.py (MMLU, MMLU-Pro non-MMLU sources, chat origins, natural
requests; its held-out parts are never trained on) and the Japanese MMLU questions of
../shared/data/multilingual-dev.jsonl.gz (fine class `ja:<subject>`). Model, on the embedding centred (the
training rows' mean subtracted, then L2-normalised again: e5 embeddings share a large common direction):
the project's grouped MLP (modelbuild/heads.train_mlp, fine classes summed into the 14 categories) at a
temperature T, mixed with the exemplar memory's vote (modelbuild/category_memory.py: the 20 nearest training
rows, 2-bit codes, no text): probs = softmax((log p_mlp + GAMMA * log p_knn) / T2). T and T2 are fitted on a
validation slice (10% of the near-duplicate groups of the training rows, salt "e5val"; never trained on).
Centring (+1.4 points Japanese, +0.9 English on that slice) and GAMMA 0.6 / tau 0.05 (+1.4 / +1.1 more) were
chosen there, among 5 MLP settings and 8 memory settings.

Three passes:
1. `english_only`: English training rows only. Japanese is held out by language (zero-shot): every Japanese row.
2. `with_japanese`: plus the Japanese rows outside 20% of their near-duplicate groups
   (category_data.within_source_split, the shape of the independent checks); Japanese numbers are on those 20%.
3. shipped: as 2 plus the 20% Japanese test rows (the validation slice still held out for the temperature and
   the threshold); its numbers on the Japanese test rows are not honest and are not reported as such.
The routing threshold (`signals.multilingual.threshold`) is chosen on the Japanese rows of pass 2's validation
slice: the lowest probability at which confident-and-wrong stays at most MAX_CONFIDENT_WRONG of the rows, and
written to metrics.json with every held-out number (accuracy, ECE, confident share, confident-wrong share).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from modelbuild.category_data import LABELS, SHARED, dup_group, load_mix, within_source_split
from modelbuild.e5_embed import embed_e5
from modelbuild.heads import (
    ARTIFACTS,
    ece,
    export_grouped_head,
    fit_temperature_grouped,
    grouped_probs,
    held_out,
    logits,
    read_jsonl,
    train_mlp,
    write_labels,
)

OUT = ARTIFACTS / "e5"
NAME = "e5_category_head"
MAX_CONFIDENT_WRONG = 0.03  # aimed under the 5% target (at 0.04 the held-out rows read 5.1-6.3%: RESULTS, route11/12)
HIDDEN = 512
GAMMA = 0.6
TAU = 0.05


def japanese_rows() -> list[dict]:
    """The Japanese MMLU questions as mix rows (source `ja`, fine class `ja:<subject>`)."""
    return [{"text": r["text"], "category": r["category"], "source": "ja", "fine": "ja:" + r["subject"]}
            for r in read_jsonl(SHARED / "multilingual-dev.jsonl.gz")]


def validation_split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(train, validation): 10% of the near-duplicate groups, salted apart from within_source_split's 20%."""
    val = [r for r in rows if held_out("e5val:" + dup_group(r["text"]), 10)]
    ids = {id(r) for r in val}
    return [r for r in rows if id(r) not in ids], val


def center(x: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """(x - mu), L2-normalised per row [N,D]."""
    z = x - mu
    return (z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class Fitted:
    """A trained grouped MLP with its fine classes, group matrix and temperature, the centring mean, the exemplar
    memory and the mix temperature."""

    def __init__(self, rows: list[dict], val: list[dict], seed: int = 0) -> None:
        from modelbuild.category_memory import MemoryVote

        self.fine = sorted({r["fine"] for r in rows})
        idx = {f: i for i, f in enumerate(self.fine)}
        self.group = np.zeros((len(self.fine), len(LABELS)), np.float32)
        for r in rows:
            self.group[idx[r["fine"]], LABELS.index(r["category"])] = 1.0
        bad = [f for f in self.fine if self.group[idx[f]].sum() != 1]
        if bad:
            raise ValueError(f"fine classes with more than one category: {bad[:5]}")
        raw = embed_e5([r["text"] for r in rows])
        self.mu = raw.mean(0).astype(np.float32)
        x = center(raw, self.mu)
        y = np.array([idx[r["fine"]] for r in rows], np.int64)
        self.model = train_mlp(x, y, len(self.fine), np.ones(len(y), np.float32), hidden=HIDDEN, seed=seed)
        self.memory = MemoryVote.build(x, _y(rows), len(LABELS), k=20, tau=TAU)
        xv = center(embed_e5([r["text"] for r in val]), self.mu)
        zv = logits(self.model, xv)
        self.temperature = fit_temperature_grouped(zv, _y(val), self.group)
        self.t2 = 1.0
        self.t2 = fit_temperature_grouped(np.log(self._mix(xv)), _y(val), np.eye(len(LABELS), dtype=np.float32))

    def _mix(self, x: np.ndarray) -> np.ndarray:
        pm = grouped_probs(logits(self.model, x), self.group, self.temperature)
        lp = (np.log(pm + 1e-12) + GAMMA * self.memory.log_term(x)) / self.t2
        lp = lp - lp.max(1, keepdims=True)
        e = np.exp(lp)
        return e / e.sum(1, keepdims=True)

    def probs(self, texts: list[str]) -> np.ndarray:
        """[N,14] category probabilities (as the exported graph computes them)."""
        return self._mix(center(embed_e5(texts), self.mu))

    def export(self, path: Path) -> None:
        """`embedding` [B,384] (raw e5) -> `probs` [B,14]: centring, the MLP, the memory vote and the mix."""
        import onnx
        import torch
        from onnx import helper, numpy_helper

        from modelbuild.category_memory import memory_graph

        class Centred(torch.nn.Module):  # export_grouped_head feeds 20 * embedding
            def __init__(self, inner: torch.nn.Module, mu: np.ndarray) -> None:
                super().__init__()
                self.inner = inner
                self.register_buffer("mu20", torch.from_numpy(mu * 20.0))

            def forward(self, v: torch.Tensor) -> torch.Tensor:
                z = v - self.mu20
                return self.inner(20.0 * z / z.norm(dim=-1, keepdim=True).clamp(min=1e-12))

        self.model.eval()
        for prm in self.model.parameters():
            prm.requires_grad_(False)
        export_grouped_head(Centred(self.model, self.mu), self.temperature, self.group, path)
        m = onnx.load(str(path))
        g = m.graph
        for node in g.node:
            node.output[:] = ["mlp_probs" if o == "probs" else o for o in node.output]
        del g.output[:]
        nodes, inits = memory_graph(self.memory)
        for node in nodes:
            node.input[:] = ["centred" if i == "embedding" else i for i in node.input]
        n = helper.make_node
        g.initializer.extend([*inits,
                              numpy_helper.from_array(self.mu, "mix_mu"),
                              numpy_helper.from_array(np.array([1e-12], np.float32), "mix_eps"),
                              numpy_helper.from_array(np.array([GAMMA], np.float32), "mix_gamma"),
                              numpy_helper.from_array(np.array([self.t2], np.float32), "mix_t2")])
        g.node.extend([
            n("Sub", ["embedding", "mix_mu"], ["centred_raw"]),
            n("ReduceL2", ["centred_raw"], ["centred_norm"], axes=[1], keepdims=1),
            n("Max", ["centred_norm", "mix_eps"], ["centred_norm_eps"]),
            n("Div", ["centred_raw", "centred_norm_eps"], ["centred"]),
            *nodes,
            n("Add", ["mlp_probs", "mix_eps"], ["mlp_probs_eps"]),
            n("Log", ["mlp_probs_eps"], ["mlp_logp"]),
            n("Mul", ["mem_logp", "mix_gamma"], ["mem_scaled"]),
            n("Add", ["mlp_logp", "mem_scaled"], ["mix"]),
            n("Div", ["mix", "mix_t2"], ["mix_t"]),
            n("Softmax", ["mix_t"], ["probs"], axis=-1),
        ])
        g.output.append(helper.make_tensor_value_info("probs", onnx.TensorProto.FLOAT, ["batch", len(LABELS)]))
        onnx.checker.check_model(m)
        onnx.save(m, str(path))


def _y(rows: list[dict]) -> np.ndarray:
    return np.array([LABELS.index(r["category"]) for r in rows], np.int64)


def report(rows: list[dict], p: np.ndarray, threshold: float | None = None) -> dict[str, float]:
    """Accuracy, stratified accuracy, ECE; with `threshold` also the confident share, accuracy when confident and
    the confident-and-wrong share of all rows."""
    y, pred, conf = _y(rows), p.argmax(1), p.max(1)
    per_cat = [float((pred[y == k] == k).mean()) for k in range(len(LABELS)) if (y == k).any()]
    out = {"n": len(rows), "accuracy": round(float((pred == y).mean()), 4),
           "stratified": round(float(np.mean(per_cat)), 4), "ece": round(ece(p, y), 4)}
    if threshold is not None:
        c = conf >= threshold
        out |= {"confident": round(float(c.mean()), 4),
                "accuracy_when_confident": round(float((pred[c] == y[c]).mean()) if c.any() else 0.0, 4),
                "confident_wrong": round(float((c & (pred != y)).mean()), 4),
                "confident_right": round(float((c & (pred == y)).mean()), 4)}
    return out


def choose_threshold(p: np.ndarray, y: np.ndarray, max_wrong: float = MAX_CONFIDENT_WRONG) -> float:
    """Lowest threshold (grid 0.30..0.95) whose confident-and-wrong share of the rows is at most `max_wrong`."""
    pred, conf = p.argmax(1), p.max(1)
    for t in np.round(np.arange(0.30, 0.951, 0.01), 2):
        if float(((conf >= t) & (pred != y)).mean()) <= max_wrong:
            return float(t)
    return 0.95


def _parts(mix, ja_test: list[dict]) -> dict[str, list[dict]]:  # type: ignore[no-untyped-def]
    parts = {k: v for k, v in mix.held_out.items() if v}
    parts["japanese_test"] = ja_test
    return parts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-final", action="store_true", help="report only; write no artifact")
    args = ap.parse_args(argv)
    mix = load_mix()
    ja = japanese_rows()
    ja_train, ja_test = within_source_split(ja, 20)
    en_train, en_val = validation_split(mix.train)
    jt_train, jt_val = validation_split(ja_train)
    metrics: dict[str, object] = {"data": {"english_train": len(en_train), "english_val": len(en_val),
                                           "japanese_train": len(jt_train), "japanese_val": len(jt_val),
                                           "japanese_test": len(ja_test), "japanese_all": len(ja)}}

    a = Fitted(en_train, en_val)
    pa_jval = a.probs([r["text"] for r in jt_val])
    ta = choose_threshold(pa_jval, _y(jt_val))
    rep_a: dict[str, object] = {"temperature": round(a.temperature, 4), "t2": round(a.t2, 4), "threshold": ta,
                                "japanese_all_zero_shot": report(ja, a.probs([r["text"] for r in ja]), ta)}
    for name, rows in _parts(mix, ja_test).items():
        rep_a[name] = report(rows, a.probs([r["text"] for r in rows]), ta if name == "japanese_test" else None)
    metrics["english_only"] = rep_a
    print(json.dumps({"english_only": rep_a}, indent=1), flush=True)

    b = Fitted(en_train + jt_train, en_val + jt_val)
    pb_jval = b.probs([r["text"] for r in jt_val])
    tb = choose_threshold(pb_jval, _y(jt_val))
    rep_b: dict[str, object] = {"temperature": round(b.temperature, 4), "t2": round(b.t2, 4), "threshold": tb,
                                "japanese_val": report(jt_val, pb_jval, tb)}
    for name, rows in _parts(mix, ja_test).items():
        rep_b[name] = report(rows, b.probs([r["text"] for r in rows]), tb if name == "japanese_test" else None)
    metrics["with_japanese"] = rep_b
    print(json.dumps({"with_japanese": rep_b}, indent=1), flush=True)

    if args.no_final:
        return 0
    final = Fitted(en_train + jt_train + ja_test, en_val + jt_val)
    tf = choose_threshold(final.probs([r["text"] for r in jt_val]), _y(jt_val))
    metrics["shipped"] = {"temperature": round(final.temperature, 4), "t2": round(final.t2, 4), "threshold": tf,
                          "gamma": GAMMA, "tau": TAU, "memory_rows": final.memory.n_rows,
                          "fine_classes": len(final.fine), "hidden": HIDDEN,
                          "natural": report(mix.held_out["natural"],
                                            final.probs([r["text"] for r in mix.held_out["natural"]]))}
    OUT.mkdir(parents=True, exist_ok=True)
    final.export(OUT / f"{NAME}.onnx")
    write_labels(OUT / f"{NAME}.labels.json", LABELS)
    (OUT / f"{NAME}.metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    import onnxruntime as ort

    sess = ort.InferenceSession(str(OUT / f"{NAME}.onnx"), providers=["CPUExecutionProvider"])
    texts = [r["text"] for r in mix.held_out["natural"][:50]]
    # one row per run, as at concurrency 1 (the memory's query is quantised per call, category_memory.py)
    got = np.concatenate([sess.run(["probs"], {"embedding": e[None, :]})[0] for e in embed_e5(texts)])
    diff = float(np.abs(got - final.probs(texts)).max())
    print(f"shipped: threshold {tf}, onnx vs numpy max |diff| {diff:.2e}; wrote {OUT}/{NAME}.*")
    return 0 if diff < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
