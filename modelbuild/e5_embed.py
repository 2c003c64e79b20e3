"""Embeddings of the multilingual encoder (models/e5) for training and benchmarks, cached per text.

    python -m modelbuild.e5_embed            (warms the cache for the category mix and the Japanese set)

`embed_e5(texts)` tokenises exactly as the router does (semrouter.signals.onnx.tokenize: "query: " prefix,
head+tail truncation to 256 tokens, <s> ... </s>) and runs the int8 graph in length-sorted batches. Results are
cached under build/e5-emb/ (gitignored) keyed by a hash of the text and of the encoder file, so a rerun only
embeds new texts.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modelbuild.heads import ROOT
from modelbuild.npz_store import save_npz_atomic

E5_DIR = ROOT / "models" / "e5"
CACHE = ROOT / "build" / "e5-emb"
QUERY_PREFIX = "query: "


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _model_tag(model_dir: Path) -> str:
    return hashlib.sha1((model_dir / "manifest.json").read_bytes()).hexdigest()[:12]


def embed_e5(texts: Sequence[str], model_dir: Path = E5_DIR, batch: int = 16, threads: int = 2,
             max_tokens: int = 256) -> np.ndarray:
    """[N,384] float32 L2-normalised embeddings of `texts` (cached). Raises FileNotFoundError without models/e5."""
    import onnxruntime as ort

    from semrouter.signals.onnx.multilingual import TOKENIZER
    from semrouter.signals.onnx.tokenize import Normaliser, UnigramTokenizer

    path = CACHE / f"{_model_tag(model_dir)}-{max_tokens}.npz"
    cache: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as z:
            cache = dict(zip(z["keys"].tolist(), z["emb"], strict=True))
    keys = [_key(t) for t in texts]
    todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cache}.items(), key=lambda kv: len(kv[1]))
    if todo:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(model_dir / "encoder.int8.onnx"), so, providers=["CPUExecutionProvider"])
        tok = UnigramTokenizer(model_dir / TOKENIZER[0], Normaliser.load(model_dir / TOKENIZER[1]), max_tokens)
        t0 = time.time()
        for i in range(0, len(todo), batch):
            part = todo[i : i + batch]
            tb = tok.encode([QUERY_PREFIX + t for _, t in part])
            emb = sess.run(["sentence_embedding"], {"input_ids": tb.input_ids, "attention_mask": tb.attention_mask})[0]
            for (k, _), e in zip(part, emb, strict=True):
                cache[k] = e.astype(np.float32)
            if (i // batch) % 50 == 0:
                print(f"e5: {i + len(part)}/{len(todo)} embedded, {time.time() - t0:.0f} s", file=sys.stderr,
                      flush=True)
            if (i // batch) % 200 == 199:
                _save(path, cache)
        _save(path, cache)
    return np.stack([cache[k] for k in keys]) if keys else np.zeros((0, 384), np.float32)


def _save(path: Path, cache: dict[str, np.ndarray]) -> None:
    save_npz_atomic(path, keys=np.array(list(cache)), emb=np.stack(list(cache.values())))


def main() -> int:
    from modelbuild.category_data import SHARED, load_mix
    from modelbuild.heads import read_jsonl

    mix = load_mix()
    texts = [r["text"] for r in read_jsonl(SHARED / "multilingual-dev.jsonl.gz")]
    texts += [r["text"] for r in mix.train] + [r["text"] for rows in mix.held_out.values() for r in rows]
    embed_e5(texts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
