"""MiniLM sentence embeddings with the shipped encoder (models/encoder.int8.onnx), cached per text under /tmp.

Tokenised with `tokenizers`: padding to the longest in the batch (not the file's default fixed 128)
and truncation to 256, batches of 64 sorted by length. Unique texts are embedded once; the result
is kept per text in /tmp/semrouter_emb_store_<encoder sha256>.npz (never in the repo), so a changed data
set only embeds its new texts.

    .venv/bin/python -m modelbuild.cache_verifier.embed   # embeds all qqp-dev sentences
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from modelbuild.npz_store import save_npz_atomic

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "encoder.int8.onnx"
TOKENIZER = ROOT / "models" / "tokenizer.json"


class Encoder:
    def __init__(self, model: Path = MODEL, tokenizer: Path = TOKENIZER, threads: int = 2) -> None:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        self.tok = Tokenizer.from_file(str(tokenizer))
        self.tok.no_padding()
        self.tok.no_truncation()
        self.tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch
        self.tok.enable_truncation(256)
        self._inputs = {x.name for x in self.sess.get_inputs()}

    def __call__(self, texts: list[str], batch: int = 64, progress: bool = False) -> np.ndarray:
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), 384), dtype=np.float32)
        t0 = time.perf_counter()
        for n, i in enumerate(range(0, len(texts), batch)):
            idx = order[i:i + batch]
            enc = self.tok.encode_batch([texts[j] for j in idx])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            (emb,) = self.sess.run(["sentence_embedding"], feeds)
            out[idx] = emb
            if progress and n % 100 == 0:
                print(f"  {i + len(idx)}/{len(texts)} texts, {time.perf_counter() - t0:.0f}s", flush=True)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def _store(model: Path) -> Path:
    return Path(f"/tmp/semrouter_emb_store_{hashlib.sha256(Path(model).read_bytes()).hexdigest()[:16]}.npz")


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def embed_cached(texts: list[str], model: Path = MODEL, tokenizer: Path = TOKENIZER, threads: int = 2,
                 progress: bool = False) -> np.ndarray:
    """Embeddings of `texts` (row i = texts[i]); each unique text embedded once, ever, per encoder file:
    kept in /tmp/semrouter_emb_store_<encoder sha256>.npz (never in the repo), new texts appended."""
    store = _store(model)
    known: dict[str, np.ndarray] = {}
    if store.exists():
        with np.load(store) as z:
            known = dict(zip(z["keys"].tolist(), z["vecs"], strict=True))
    missing = sorted({t for t in texts if _key(t) not in known})
    if missing:
        t = time.perf_counter()
        emb = Encoder(Path(model), Path(tokenizer), threads)(missing, progress=progress)
        print(f"embedded {len(missing)} new texts in {time.perf_counter() - t:.0f}s -> {store}", flush=True)
        known.update(zip((_key(x) for x in missing), emb, strict=True))
        save_npz_atomic(store, keys=np.array(list(known)), vecs=np.stack(list(known.values())))
    return np.stack([known[_key(t)] for t in texts]).astype(np.float32)


def seed_store(npy: Path, texts: list[str], model: Path = MODEL) -> None:
    """Add an older whole-set cache file (/tmp/semrouter_emb_<h>.npy, rows = sorted unique `texts`)."""
    uniq = sorted(set(texts))
    emb = np.load(npy)
    assert len(emb) == len(uniq)
    store = _store(model)
    known: dict[str, np.ndarray] = {}
    if store.exists():
        with np.load(store) as z:
            known = dict(zip(z["keys"].tolist(), z["vecs"], strict=True))
    known.update(zip((_key(x) for x in uniq), emb, strict=True))
    save_npz_atomic(store, keys=np.array(list(known)), vecs=np.stack(list(known.values())))


def main() -> None:
    from modelbuild.cache_verifier.data import load_qqp

    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    pairs = load_qqp()
    embed_cached([p.a for p in pairs] + [p.b for p in pairs], threads=args.threads, progress=True)


if __name__ == "__main__":
    main()
