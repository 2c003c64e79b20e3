"""Train the PII token-classification head (PERSON, STREET_ADDRESS; BIO tags) and export ONNX.

    HF_HUB_OFFLINE=1 .venv/bin/python -m modelbuild.pii.train_pii --models models \
        --out modelbuild/artifacts

Features are the encoder's `token_embeddings` from BOTH models/encoder.int8.onnx and
models/encoder.onnx (the head must work whichever the router runs). Data: synthetic chat
requests from modelbuild/pii/datagen.py (TRAIN templates; validation = different seed).
Head: Conv1d(384->256, k=1) + GELU + Conv1d(256->K, k=3): a per-token layer, then one
neighbour each side (the encoder output is already contextual; wider windows overfit templates). Fixed seeds; a few minutes on 2 CPU threads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from modelbuild.pii.datagen import Example, make_examples
from semrouter.signals.pii.encode import TokenEmbedder
from semrouter.signals.pii.head import HEAD_FILE, LABELS_FILE, decode_bio

LABELS = ("O", "B-PERSON", "I-PERSON", "B-STREET_ADDRESS", "I-STREET_ADDRESS")
LEARNED = ("PERSON", "STREET_ADDRESS")
DIM = 384


class ConvHead(nn.Module):
    """Per-token MLP layer (kernel 1) then a kernel-3 layer that looks one token left and right."""

    def __init__(self, dim: int = DIM, hidden: int = 256, k: int = len(LABELS), dropout: float = 0.3) -> None:
        super().__init__()
        self.in_drop = nn.Dropout(0.1)
        self.conv1 = nn.Conv1d(dim, hidden, kernel_size=1)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(hidden, k, kernel_size=3, padding=1)

    def forward(self, token_embeddings: torch.Tensor) -> torch.Tensor:  # [B,T,D] -> [B,T,K]
        x = self.in_drop(token_embeddings).transpose(1, 2)
        x = self.conv2(self.drop(self.act(self.conv1(x))))
        return x.transpose(1, 2)


def token_labels(ex: Example, offsets: list[tuple[int, int]]) -> np.ndarray:
    """BIO label id per token: every piece of the span's first word is B, later words I."""
    y = np.zeros(len(offsets), dtype=np.int64)
    for start, end, type_ in ex.spans:
        if type_ not in LEARNED:
            continue
        first_word_end = start + (ex.text[start:end] + " ").index(" ")
        for t, (s, e) in enumerate(offsets):
            if e > s and s >= start and e <= end:
                y[t] = LABELS.index(f"{'B' if s < first_word_end else 'I'}-{type_}")
    return y


def featurize(embedder: TokenEmbedder, examples: list[Example], batch: int = 32) -> list[tuple[np.ndarray, np.ndarray]]:
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].text))
    out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(examples)
    for b in range(0, len(order), batch):
        idx = order[b : b + batch]
        for i, (emb, offs) in zip(idx, embedder.embed_batch([examples[i].text for i in idx]), strict=True):
            out[i] = (emb.astype(np.float16), token_labels(examples[i], offs))
    return [o for o in out if o is not None]


def pad_batch(items: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    t = max(len(y) for _, y in items)
    x = np.zeros((len(items), t, DIM), dtype=np.float32)
    y = np.zeros((len(items), t), dtype=np.int64)
    m = np.zeros((len(items), t), dtype=bool)
    for i, (e, lab) in enumerate(items):
        x[i, : len(lab)] = e
        y[i, : len(lab)] = lab
        m[i, : len(lab)] = True
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(m)


def train(data: list[tuple[np.ndarray, np.ndarray]], epochs: int, seed: int) -> ConvHead:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ConvHead()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * ((len(data) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    weight = torch.tensor([1.0, 2.0, 2.0, 2.0, 2.0])
    loss_fn = nn.CrossEntropyLoss(weight=weight, reduction="none")
    # Batches of similar length (little padding), visited in random order each epoch.
    by_len = sorted(range(len(data)), key=lambda i: len(data[i][1]))
    batches = [by_len[b : b + 64] for b in range(0, len(by_len), 64)]
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for bi in rng.permutation(len(batches)):
            x, y, m = pad_batch([data[i] for i in batches[bi]])
            logits = model(x)
            loss = (loss_fn(logits.reshape(-1, len(LABELS)), y.reshape(-1)) * m.reshape(-1)).sum() / m.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total, count = total + float(loss.detach()) * len(x), count + len(x)
        print(f"epoch {epoch + 1}/{epochs} loss {total / count:.4f}", flush=True)
    model.eval()
    return model


def evaluate(model: ConvHead, embedder: TokenEmbedder, examples: list[Example], min_score: float = 0.5) -> dict[str, dict[str, float]]:
    """Entity-level exact-span precision/recall per learned type through the runtime decoder."""
    tp = {t: 0 for t in LEARNED}
    fp = dict(tp)
    fn = dict(tp)
    with torch.no_grad():
        for ex in examples:
            emb, offs = embedder.embed(ex.text)
            probs = torch.softmax(model(torch.from_numpy(emb)[None]), -1)[0].numpy()
            pred = {(e.start, e.end, e.type) for e in decode_bio(ex.text, probs, offs, LABELS, min_score)}
            gold = {s for s in ex.spans if s[2] in LEARNED}
            for s in pred:
                (tp if s in gold else fp)[s[2]] += 1
            for s in gold - pred:
                fn[s[2]] += 1
    return {
        t: {"precision": round(tp[t] / max(1, tp[t] + fp[t]), 4), "recall": round(tp[t] / max(1, tp[t] + fn[t]), 4)}
        for t in LEARNED
    }


def export(model: ConvHead, path: Path) -> None:
    model.eval()
    dummy = torch.zeros(2, 7, DIM)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["token_embeddings"],
        output_names=["logits"],
        dynamic_axes={"token_embeddings": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}},
        opset_version=17,
        dynamo=False,
    )


def cached_features(args: argparse.Namespace, examples: list[Example], int8: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """Features for `examples`, cached under --cache keyed by data size, seed and encoder file."""
    enc = Path(args.models) / ("encoder.int8.onnx" if int8 else "encoder.onnx")
    key = hashlib.sha256(f"{len(examples)}:{args.seed}:{enc.stat().st_size}:{enc.stat().st_mtime_ns}".encode())
    key.update("\n".join(e.text + repr(e.spans) for e in examples).encode())
    path = Path(args.cache) / f"pii_features_{key.hexdigest()[:16]}.pkl"
    if path.is_file():
        with path.open("rb") as f:
            return pickle.load(f)
    feats = featurize(TokenEmbedder.load(args.models, int8=int8, threads=args.threads), examples)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(feats, f, protocol=pickle.HIGHEST_PROTOCOL)
    return feats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="models", help="folder with encoder(.int8).onnx + tokenizer.json")
    ap.add_argument("--out", default="modelbuild/artifacts")
    ap.add_argument("--train", type=int, default=6000, help="synthetic training sentences")
    ap.add_argument("--val", type=int, default=600)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default="build/pii", help="feature cache folder (git-ignored)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()

    train_ex = make_examples(args.train, heldout=False, seed=args.seed)
    val_ex = make_examples(args.val, heldout=False, seed=args.seed + 1)
    data: list[tuple[np.ndarray, np.ndarray]] = []
    for int8 in (True, False):
        data += cached_features(args, train_ex, int8)
        print(f"features ({'int8' if int8 else 'fp32'}) ready at {time.time() - t0:.0f}s", flush=True)
    model = train(data, args.epochs, args.seed)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    export(model, out / HEAD_FILE)
    metrics = {
        enc: evaluate(model, TokenEmbedder.load(args.models, int8=enc == "int8", threads=args.threads), val_ex)
        for enc in ("int8", "fp32")
    }
    meta = {
        "labels": list(LABELS),
        "input": "token_embeddings",
        "output": "logits",
        "encoder": "all-MiniLM-L6-v2 last hidden state (encoder.onnx / encoder.int8.onnx)",
        "architecture": "Conv1d(384,256,k=1)+GELU+Conv1d(256,5,k=3)",
        "train": {"sentences": args.train, "seed": args.seed, "epochs": args.epochs, "features": ["int8", "fp32"]},
        "validation_exact_span": metrics,
    }
    (out / LABELS_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    print(f"wrote {out / HEAD_FILE} ({(out / HEAD_FILE).stat().st_size / 1e6:.2f} MB) in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
