"""A fine-tuned category branch of the encoder (a copy of layer 5 reading layer 4's output) against the frozen
embedding, on the category mix, held out by source and within source. An experiment: nothing here ships.

    python -m modelbuild.train_category_branch [--epochs 1] [--batch 32] [--lr 3e-5] [--out build/category-branch]

Rows: modelbuild/category_data.py's mix. Two splits, as train_category.py:
- *by source* (evaluation): trained on `mix.train`; scored on the held-out parts (MMLU 20% hash split, MMLU-Pro
  sources never trained on, the tldr chat origin, the natural eval set);
- *within source*: every labelled row but the natural eval set, 20% of the near-duplicate groups held out in every
  source (`within_source_split`).
Per split, two models with the same head (an MLP 384 -> 512 -> fine classes on 20 x the L2-normalised mean of the
token states, fine probabilities summed into the 14 categories, as category_fit's MLP) are trained on the training
rows minus the validation slice (`category_fit.is_val`):
- *frozen*: the head on the shared encoder's `sentence_embedding` (the built int8 graph, one pass per batch of 32);
- *branch*: the same head, started from the frozen head's weights, fine-tuned together with a float32 copy of
  encoder layer 5 (modelbuild/safety_branch.make_layer, MiniLM's own weights) over the int8 graph's layer-4 states
  (cached once under `--out`, float16) for `--epochs` (AdamW, layer lr `--lr`, head lr 10x, linear decay).
Each model's temperature is fitted on the validation slice; the report (`--out`/report.json and stdout) gives
accuracy, stratified accuracy (mean of per-category accuracies), ECE, per source and per category.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from modelbuild.category_data import LABELS, load_mix, within_source_split
from modelbuild.category_fit import NATURAL_WEIGHT, fine_classes, fine_label, is_val
from modelbuild.heads import ROOT, ece, fit_temperature_grouped, grouped_probs
from modelbuild.safety_branch import DIM, _layer4_session, bert_layer_weights, make_layer


def states(texts: list[str], model_dir: Path, cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(layer-4 states float16 [sum L,384], row offsets [N+1], frozen sentence embeddings float32 [N,384]) of
    `texts` tokenised as the router does (256 tokens, head + tail), from the built int8 encoder; cached by content."""
    from semrouter.signals.onnx.tokenize import TextTokenizer

    tok = TextTokenizer(model_dir / "tokenizer.json", 256)
    h = hashlib.sha256((model_dir / "encoder.int8.onnx").read_bytes())
    for t in texts:
        h.update(t.encode() + b"\0")
    path = cache / f"l4-{h.hexdigest()[:16]}.npz"
    if path.is_file():
        z = np.load(path)
        return z["states"], z["offsets"], z["emb"]
    sess, name = _layer4_session(model_dir)
    ids = [tok.encode([t]).input_ids[0].tolist() for t in texts]
    lens = np.array([len(r) for r in ids])
    offsets = np.concatenate([[0], np.cumsum(lens)])
    st = np.zeros((int(offsets[-1]), DIM), np.float16)
    emb = np.zeros((len(texts), DIM), np.float32)
    order = np.argsort(lens, kind="stable")
    t0 = time.time()
    for at in range(0, len(order), 32):
        idx = order[at : at + 32]
        width = int(lens[idx].max())
        x = np.zeros((len(idx), width), np.int64)
        m = np.zeros_like(x)
        for k, r in enumerate(idx):
            x[k, : lens[r]] = ids[r]
            m[k, : lens[r]] = 1
        e, l4 = sess.run(["sentence_embedding", name], {"input_ids": x, "attention_mask": m})
        for k, r in enumerate(idx):
            st[offsets[r] : offsets[r + 1]] = l4[k, : lens[r]]
            emb[r] = e[k]
        if at % 3200 == 0:
            print(f"  layer-4 states {at}/{len(order)} {time.time() - t0:.0f}s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, states=st, offsets=offsets, emb=emb)
    return st, offsets, emb


class Model:
    """Head (+ optionally the layer copy) over a row set's cached states; torch modules, float32."""

    def __init__(self, n_fine: int, seed: int = 0) -> None:
        import torch
        from torch import nn

        torch.manual_seed(seed)
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(DIM, 512), nn.GELU(), nn.Dropout(0.3),
                                  nn.Linear(512, n_fine))
        self.layer = None

    def pooled(self, st: np.ndarray, offsets: np.ndarray, rows: np.ndarray):  # type: ignore[no-untyped-def]
        """L2-normalised masked mean of the layer copy's output [len(rows),384] (torch, with grad)."""
        import torch

        lens = offsets[rows + 1] - offsets[rows]
        width = int(lens.max())
        h = np.zeros((len(rows), width, DIM), np.float32)
        mask = np.zeros((len(rows), width), np.float32)
        for k, r in enumerate(rows):
            h[k, : lens[k]] = st[offsets[r] : offsets[r + 1]]
            mask[k, : lens[k]] = 1.0
        mt = torch.from_numpy(mask)
        out = self.layer(torch.from_numpy(h), mt)
        mean = (out * mt[..., None]).sum(1) / mt.sum(1, keepdim=True)
        return torch.nn.functional.normalize(mean, dim=1)

    def fit_frozen(self, x: np.ndarray, f: np.ndarray, w: np.ndarray, epochs: int = 8, seed: int = 0) -> None:
        """Train the head alone on frozen embeddings `x` [N,384] (fine labels `f`, weights `w`)."""
        import torch

        opt = torch.optim.AdamW(self.head.parameters(), lr=1e-3, weight_decay=0.5)
        rng = np.random.default_rng(seed)
        xt, ft, wt = torch.from_numpy(20 * x), torch.from_numpy(f), torch.from_numpy(w).float()
        self.head.train()
        for _ in range(epochs):
            for b in np.array_split(rng.permutation(len(x)), max(1, len(x) // 128)):
                loss = (torch.nn.functional.cross_entropy(self.head(xt[b]), ft[b], reduction="none") * wt[b]).sum() \
                    / wt[b].sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
        print(f"  frozen head: last minibatch loss {loss.item():.3f}", flush=True)

    def fit_branch(self, st: np.ndarray, offsets: np.ndarray, rows: np.ndarray, f: np.ndarray, w: np.ndarray,
                   epochs: int, batch: int, lr: float, seed: int = 0) -> None:
        """Fine-tune a copy of layer 5 and the head (already fitted frozen) on `rows` of the cached states."""
        import torch

        self.layer = make_layer(bert_layer_weights())
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        steps = epochs * (len(rows) // batch)
        opt = torch.optim.AdamW([{"params": self.layer.parameters(), "lr": lr},
                                 {"params": self.head.parameters(), "lr": 10 * lr}], weight_decay=1e-2)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 30) * max(0.0, 1 - s / steps))
        ft, wt = torch.from_numpy(f), torch.from_numpy(w).float()
        lens = offsets[rows + 1] - offsets[rows]
        batches = []
        for _ in range(epochs):  # shuffled, then sorted by length within windows of 50 batches (less padding)
            perm = rng.permutation(len(rows))
            for w0 in range(0, len(perm), 50 * batch):
                win = perm[w0 : w0 + 50 * batch]
                win = win[np.argsort(lens[win], kind="stable")]
                batches += [win[i : i + batch] for i in range(0, len(win) - batch + 1, batch)]
        batches = [batches[i] for i in rng.permutation(len(batches))][:steps]
        steps = len(batches)
        self.layer.train()
        self.head.train()
        t0 = time.time()
        for s in range(steps):
            b = batches[s]
            z = self.head(20 * self.pooled(st, offsets, rows[b]))
            loss = (torch.nn.functional.cross_entropy(z, ft[b], reduction="none") * wt[b]).sum() / wt[b].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if s % 100 == 0:
                print(f"  step {s}/{steps} loss {loss.item():.3f} {time.time() - t0:.0f}s", flush=True)

    def logits(self, st: np.ndarray, offsets: np.ndarray, emb: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Fine logits [len(rows),F] (the branch's pooled states when a layer is trained, else `emb`)."""
        import torch

        self.head.eval()
        out = []
        with torch.no_grad():
            if self.layer is None:
                return self.head(torch.from_numpy(20 * emb[rows])).numpy()
            self.layer.eval()
            by_len = rows[np.argsort(offsets[rows + 1] - offsets[rows], kind="stable")]
            res = {}
            for at in range(0, len(by_len), 64):
                part = by_len[at : at + 64]
                for r, z in zip(part, self.head(20 * self.pooled(st, offsets, part)).numpy(), strict=True):
                    res[int(r)] = z
            out = [res[int(r)] for r in rows]
        return np.stack(out)


def part_report(rows: list[dict], p: np.ndarray) -> dict[str, object]:
    """accuracy, stratified accuracy, ECE, n, per category and per source of probabilities `p` [N,14]."""
    y = np.array([LABELS.index(r["category"]) for r in rows])
    pred = p.argmax(1)
    per_cat = {LABELS[k]: round(float((pred[y == k] == k).mean()), 3) for k in range(len(LABELS)) if (y == k).any()}
    srcs: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        srcs.setdefault(r["source"], []).append(i)
    return {"n": len(rows), "accuracy": round(float((pred == y).mean()), 4),
            "stratified": round(float(np.mean(list(per_cat.values()))), 4), "ece": round(ece(p, y), 4),
            "per_category": per_cat,
            "per_source": {s: [len(ix), round(float((pred[ix] == y[ix]).mean()), 3)] for s, ix in sorted(srcs.items())}}


def run_split(name: str, train: list[dict], tests: dict[str, list[dict]], pos: dict[str, int], st: np.ndarray,
              offsets: np.ndarray, emb: np.ndarray, args: argparse.Namespace) -> dict[str, object]:
    """Frozen and branch models trained on `train`; their reports on every part of `tests`."""
    val = np.array([is_val(r) for r in train])
    fit = [r for r, v in zip(train, val, strict=True) if not v]
    vrows = [r for r, v in zip(train, val, strict=True) if v]
    names, group = fine_classes(train)
    f = np.array([fine_label(r, names) for r in fit], np.int64)
    counts = np.maximum(np.bincount(f, minlength=len(names)).astype(np.float64), 1.0)
    w = ((counts.sum() / (len(names) * counts)) ** 0.5)[f] * np.array(
        [NATURAL_WEIGHT if r["source"] == "natural" else 1.0 for r in fit])
    idx = lambda rs: np.array([pos[r["text"]] for r in rs], np.int64)  # noqa: E731
    yv = np.array([LABELS.index(r["category"]) for r in vrows])
    model = Model(len(names))
    model.fit_frozen(emb[idx(fit)], f, w)
    out: dict[str, object] = {"fit_rows": len(fit), "val_rows": len(vrows), "fine_classes": len(names)}
    for kind in ("frozen", "branch"):
        if kind == "branch":
            t0 = time.time()
            model.fit_branch(st, offsets, idx(fit), f, w, args.epochs, args.batch, args.lr)
            out["branch_train_s"] = round(time.time() - t0)
        t = fit_temperature_grouped(model.logits(st, offsets, emb, idx(vrows)), yv, group)
        rep: dict[str, object] = {"temperature": round(t, 3)}
        for part, rows in tests.items():
            rep[part] = part_report(rows, grouped_probs(model.logits(st, offsets, emb, idx(rows)), group, t))
            print(f"{name} {kind} {part}: {json.dumps({k: v for k, v in rep[part].items() if k in ('n', 'accuracy', 'stratified', 'ece')})}",
                  flush=True)
        out[kind] = rep
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "category-branch")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--splits", default="source,within")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    mix = load_mix()
    tests = {k: v for k, v in mix.held_out.items() if v}
    labelled = mix.train + [r for k, v in tests.items() if k != "natural" for r in v]
    everything = labelled + tests.get("natural", [])
    texts = list(dict.fromkeys(r["text"] for r in everything))
    pos = {t: i for i, t in enumerate(texts)}
    st, offsets, emb = states(texts, args.models, args.out)
    report: dict[str, object] = {"epochs": args.epochs, "batch": args.batch, "lr": args.lr}
    if "source" in args.splits:
        report["by_source"] = run_split("by-source", mix.train, tests, pos, st, offsets, emb, args)
    if "within" in args.splits:
        ws_train, ws_test = within_source_split(labelled)
        parts = {"all": ws_test, "mmlu": [r for r in ws_test if r["source"] == "mmlu"],
                 "pro": [r for r in ws_test if r["source"].startswith("pro:")],
                 "chat": [r for r in ws_test if r["source"].startswith("chat:")],
                 "natural_in_source": [r for r in ws_test if r["source"] == "natural"]}
        report["within_source"] = run_split("within", ws_train, {k: v for k, v in parts.items() if v}, pos, st,
                                            offsets, emb, args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
