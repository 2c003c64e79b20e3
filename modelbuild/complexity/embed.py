"""Sentence embeddings from the exported ONNX encoder, exactly as the runtime computes them.

onnxruntime + tokenizers (padding to the batch's longest, truncation to 256 tokens); results are cached
under build/complexity/ keyed by the encoder file's sha256 and the texts, so re-training is fast.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

MAX_TOKENS = 256


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_session(encoder: Path, threads: int = 1):  # -> onnxruntime.InferenceSession
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(encoder), so, providers=["CPUExecutionProvider"])


def load_tokenizer(tokenizer_json: Path, max_tokens: int = MAX_TOKENS):  # -> tokenizers.Tokenizer
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.enable_truncation(max_length=max_tokens)
    tok.enable_padding()  # to the longest in the batch
    return tok


def embed_texts(texts: list[str], encoder: Path, tokenizer_json: Path, batch: int = 32, threads: int = 1,
                output: str = "sentence_embedding") -> np.ndarray:
    """[N,384] float32 L2-normalised sentence embeddings (batches sorted by length for speed); or, with
    `output="layer_means"`, the encoder's per-layer means [N,7,384]."""
    sess = make_session(encoder, threads)
    tok = load_tokenizer(tokenizer_json)
    shape = next(o.shape for o in sess.get_outputs() if o.name == output)[1:]
    out = np.zeros((len(texts), *shape), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    for i in range(0, len(texts), batch):
        idx = order[i : i + batch]
        enc = tok.encode_batch([texts[j] for j in idx])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        (emb,) = sess.run([output], {"input_ids": ids, "attention_mask": mask})
        out[idx] = emb
    return out


def cached_embeddings(
    texts: list[str], encoder: Path, tokenizer_json: Path, cache_dir: Path = Path("build/complexity"),
    batch: int = 32, output: str = "sentence_embedding",
) -> np.ndarray:
    """`batch=1` embeds each text alone, as the router does a request (the int8 encoder quantises activations
    per batch, so batched embeddings differ slightly from the router's). `output` as in `embed_texts`."""
    key = hashlib.sha256()
    key.update(_sha256(encoder).encode())
    key.update(_sha256(tokenizer_json).encode())
    if batch != 32:
        key.update(f"batch={batch}".encode())
    if output != "sentence_embedding":
        key.update(f"output={output}".encode())
    for t in texts:
        key.update(t.encode("utf-8") + b"\0")
    path = cache_dir / f"emb-{encoder.stem}-{key.hexdigest()[:16]}.npy"
    if path.exists():
        return np.load(path)
    emb = embed_texts(texts, encoder, tokenizer_json, batch=batch, output=output)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, emb)
    return emb
