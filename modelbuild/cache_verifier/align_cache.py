"""Token-alignment features (semrouter/cache/align.py) for every pair of the mix, cached on disk.

The shipped encoder (models/encoder.int8.onnx) is run once per unique text for its `token_embeddings`
(semrouter/cache/tokens.py, the class the router uses); the features of each (cached = a, new = b) pair
are kept in build/cache_verifier/align_<encoder sha>.npz keyed by sha1 of the pair (never the text), so a
rerun only encodes texts of new pairs. Chunks of texts are encoded and their pairs featurised, then the
token states are dropped (memory stays bounded).

    .venv/bin/python -m modelbuild.cache_verifier.align_cache   # featurises load_mix()
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from modelbuild.cache_verifier.embed import MODEL, TOKENIZER
from modelbuild.npz_store import save_npz_atomic
from semrouter.cache.align import ALIGN_FEATURES, features
from semrouter.cache.tokens import TokenStates

ROOT = Path(__file__).resolve().parents[2]


def _key(a: str, b: str) -> str:
    return hashlib.sha1(f"{a}\x00{b}".encode()).hexdigest()


def _store(model: Path) -> Path:
    h = hashlib.sha256(Path(model).read_bytes()).hexdigest()[:16]
    return ROOT / "build" / "cache_verifier" / f"align_{h}.npz"


def align_cached(pairs: list[tuple[str, str]], model: Path = MODEL, tokenizer: Path = TOKENIZER, threads: int = 2,
                 chunk: int = 4000) -> np.ndarray:
    """[len(pairs), len(ALIGN_FEATURES)] features of (a, b) = (cached, new) for each pair."""
    store = _store(model)
    known: dict[str, np.ndarray] = {}
    if store.exists():
        with np.load(store) as z:
            if tuple(z["names"].tolist()) == ALIGN_FEATURES:
                known = dict(zip(z["keys"].tolist(), z["feats"], strict=True))
    todo = sorted({(a, b) for a, b in pairs if _key(a, b) not in known})
    if todo:
        enc = TokenStates(model, tokenizer, threads)
        t0 = time.perf_counter()
        for i in range(0, len(todo), chunk):
            part = todo[i:i + chunk]
            texts = sorted({x for p in part for x in p})
            states = dict(zip(texts, enc(texts), strict=True))
            for a, b in part:
                (ta, ca), (tb, cb) = states[a], states[b]
                known[_key(a, b)] = features(ta, ca, tb, cb)
            print(f"  align: {i + len(part)}/{len(todo)} pairs, {time.perf_counter() - t0:.0f}s", flush=True)
            save_npz_atomic(store, keys=np.array(list(known)), feats=np.stack(list(known.values())),
                            names=np.array(ALIGN_FEATURES))
    return np.stack([known[_key(a, b)] for a, b in pairs]).astype(np.float32)


def main() -> None:
    from modelbuild.cache_verifier.mix import load_mix

    mix = load_mix()
    x = align_cached([(p.a, p.b) for p in mix])
    print(x.shape, dict(zip(ALIGN_FEATURES, x.mean(0).round(3).tolist(), strict=True)))


if __name__ == "__main__":
    main()
