"""Shared pieces of head training: embeddings from the built ONNX encoder, a small torch classifier,
temperature calibration and export to a tiny ONNX graph (`embedding` [B,384] -> `probs` [B,K])."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CACHE = ROOT / "build" / "emb-cache"


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def held_out(text: str, percent: int = 20) -> bool:
    """Deterministic split by a hash of the text: `percent`% of texts are held out."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % 100 < percent


def embed(texts: Sequence[str], model_dir: Path = ROOT / "models", precision: str = "int8",
          batch: int = 32, output: str = "sentence_embedding") -> np.ndarray:
    """Sentence embeddings from the built encoder (the runtime's tokenizer and graph), cached on disk.

    The int8 encoder quantises activations per batch, so a sentence's embedding depends a little on the
    sentences padded into the same batch. `batch=1` embeds each text alone, as the router does when it is not
    under load (and close to what micro-batching gives: measured through the analyzer, the category head's
    held-out accuracy is the same at concurrency 1 and 16); batches of 32 similar-length texts are faster.
    (modelbuild/complexity/embed.py has the same switch for its own cache.) `output="layer_means"` returns the
    encoder's per-layer masked means [N,7,384] instead of the sentence embeddings [N,384]."""
    import onnxruntime as ort

    from semrouter.signals.onnx.tokenize import TextTokenizer

    enc = model_dir / ("encoder.int8.onnx" if precision == "int8" else "encoder.onnx")
    h = hashlib.sha256(hashlib.sha256(enc.read_bytes()).digest())
    if batch != 32:
        h.update(f"batch={batch}\0".encode())
    if output != "sentence_embedding":
        h.update(f"output={output}\0".encode())
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    CACHE.mkdir(parents=True, exist_ok=True)
    cpath = CACHE / f"{h.hexdigest()[:24]}.npy"
    if cpath.is_file():
        return np.load(cpath)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(enc), so, providers=["CPUExecutionProvider"])
    tok = TextTokenizer(model_dir / "tokenizer.json", 256)
    order = np.argsort([len(t) for t in texts])  # similar lengths together: less padding
    shape = next(o.shape for o in sess.get_outputs() if o.name == output)[1:]
    out = np.zeros((len(texts), *shape), np.float32)
    for i in range(0, len(texts), batch):
        idx = order[i : i + batch]
        tb = tok.encode([texts[j] for j in idx])
        out[idx] = sess.run([output], {"input_ids": tb.input_ids, "attention_mask": tb.attention_mask})[0]
    np.save(cpath, out)
    return out


def train_classifier(
    x: np.ndarray, y: np.ndarray, k: int, weights: np.ndarray, hidden: int = 0, epochs: int = 300,
    weight_decay: float = 1e-4, lr: float = 1e-2, seed: int = 0,
):  # type: ignore[no-untyped-def]
    """Full-batch AdamW on a softmax regression (hidden=0) or a one-hidden-layer MLP. Returns the module."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    d = x.shape[1]
    if hidden:
        model = torch.nn.Sequential(
            torch.nn.Linear(d, hidden), torch.nn.GELU(), torch.nn.Dropout(0.1), torch.nn.Linear(hidden, k)
        )
    else:
        model = torch.nn.Sequential(torch.nn.Linear(d, k))
    return _fit(model, x, y, weights, epochs, lr, weight_decay)


def _fit(model, x: np.ndarray, y: np.ndarray, weights: np.ndarray, epochs: int, lr: float,  # type: ignore[no-untyped-def]
         weight_decay: float):
    """Full-batch AdamW on weighted cross-entropy (inputs scaled by 20: unit vectors → usable logits)."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    xt, yt, wt = torch.from_numpy(x), torch.from_numpy(y).long(), torch.from_numpy(weights).float()
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        loss = (torch.nn.functional.cross_entropy(model(xt * 20.0), yt, reduction="none") * wt).sum() / wt.sum()
        loss.backward()
        opt.step()
    model.eval()
    return model


def logits(model, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(x) * 20.0).numpy()


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(z: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the validation negative log-likelihood (grid search, robust and exact enough)."""
    return fit_temperature_grouped(z, y, np.eye(z.shape[1], dtype=np.float32))


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top-class confidence."""
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    total = 0.0
    for lo in np.linspace(0, 1, bins, endpoint=False):
        m = (conf > lo) & (conf <= lo + 1.0 / bins)
        if m.any():
            total += m.mean() * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return float(total)


def export_head(model, temperature: float, path: Path) -> None:  # type: ignore[no-untyped-def]
    """`embedding` float32 [B,384] -> `probs` float32 [B,K] = softmax(model(20 * embedding) / T)."""
    import torch

    class Calibrated(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, embedding: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.inner(embedding * 20.0) / temperature, dim=-1)

    _export_embedding_module(Calibrated(), path)


def _export_embedding_module(module, path: Path) -> None:  # type: ignore[no-untyped-def]
    """ONNX graph `embedding` float32 [B,384] -> `probs` (dynamic batch), opset 17."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            module.eval(), (torch.zeros(2, 384),), str(path), input_names=["embedding"],
            output_names=["probs"], dynamic_axes={"embedding": {0: "batch"}, "probs": {0: "batch"}},
            opset_version=17, dynamo=False,
        )


def write_labels(path: Path, labels: Sequence[str]) -> None:
    path.write_text(json.dumps({"labels": list(labels)}, indent=2) + "\n")


# --- grouped (fine-grained) heads: train on fine classes, sum their probabilities into coarse labels ---


def train_mlp(
    x: np.ndarray, y: np.ndarray, k: int, weights: np.ndarray, hidden: int = 1024, epochs: int = 150,
    weight_decay: float = 0.5, lr: float = 5e-3, seed: int = 0, dropout: float = 0.5, input_dropout: float = 0.1,
):  # type: ignore[no-untyped-def]
    """Full-batch AdamW on a one-hidden-layer MLP with input and hidden dropout. Returns the module (eval mode);
    usable with `logits` / `export_grouped_head`."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    model = torch.nn.Sequential(
        torch.nn.Dropout(input_dropout), torch.nn.Linear(x.shape[1], hidden), torch.nn.GELU(),
        torch.nn.Dropout(dropout), torch.nn.Linear(hidden, k),
    )
    return _fit(model, x, y, weights, epochs, lr, weight_decay)


def grouped_probs(z: np.ndarray, group: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Coarse probabilities: softmax over fine logits `z` [N,F] at `temperature`, summed by `group` [F,K] (0/1)."""
    return softmax(z / temperature) @ group


def fit_temperature_grouped(z: np.ndarray, y: np.ndarray, group: np.ndarray) -> float:
    """Temperature minimising the validation NLL of the coarse (grouped) probabilities; same grid as fit_temperature."""
    best_t, best = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.05), np.log(20.0), 400)):
        p = grouped_probs(z, group, float(t))
        nll = -np.mean(np.log(p[np.arange(len(y)), y] + 1e-12))
        if nll < best:
            best_t, best = float(t), nll
    return best_t


def export_grouped_head(model, temperature: float, group: np.ndarray, path: Path) -> None:  # type: ignore[no-untyped-def]
    """`embedding` float32 [B,384] -> `probs` float32 [B,K] = softmax(model(20 * embedding) / T) @ group."""
    import torch

    g = torch.from_numpy(np.asarray(group, dtype=np.float32))

    class Grouped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model
            self.register_buffer("group", g)

        def forward(self, embedding: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.inner(embedding * 20.0) / temperature, dim=-1) @ self.group

    _export_embedding_module(Grouped(), path)


def f1_per_class(y: np.ndarray, pred: np.ndarray, k: int) -> list[float]:
    out = []
    for c in range(k):
        tp = int(((y == c) & (pred == c)).sum())
        fp = int(((y != c) & (pred == c)).sum())
        fn = int(((y == c) & (pred != c)).sum())
        out.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return out
