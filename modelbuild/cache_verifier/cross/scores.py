"""Cross-encoder scores of many (new, cached) pairs, through the runtime class (semrouter/cache/cross_verify.py),
cached under build/xenc/ per model file (never in the repo): the benchmark and choose.py read the same numbers."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modelbuild.cache_verifier.embed import embed_cached
from modelbuild.npz_store import save_npz_atomic
from semrouter.cache import near_synonym
from semrouter.cache.config import CacheConfig
from semrouter.cache.cross_verify import CrossVerifier

ROOT = Path(__file__).resolve().parents[3]
MODEL = ROOT / "models" / "cache_verifier_cross.onnx"
CACHE = ROOT / "build" / "xenc"


def _key(new: str, cached: str) -> str:
    return hashlib.sha1(f"{new}\x00{cached}".encode()).hexdigest()


def cross_scores(news: Sequence[str], cached: Sequence[str], model: Path = MODEL, batch: int = 32,
                 progress: bool = False) -> np.ndarray:
    """P(same answer) of (news[i], cached[i]) with the cross-encoder `model`: float32 [N]."""
    digest = hashlib.sha256(Path(model).read_bytes()).hexdigest()[:16]
    store = CACHE / f"scores_{digest}.npz"
    known: dict[str, float] = {}
    if store.exists():
        with np.load(store) as z:
            known = dict(zip(z["keys"].tolist(), z["vals"].tolist(), strict=True))
    keys = [_key(n, c) for n, c in zip(news, cached, strict=True)]
    todo = sorted({k: i for i, k in enumerate(keys) if k not in known}.values(),
                  key=lambda i: len(news[i]) + len(cached[i]))
    if todo:
        cv = CrossVerifier(model)
        t0 = time.perf_counter()
        for n, s in enumerate(range(0, len(todo), batch)):
            idx = todo[s:s + batch]
            got = cv.score_pairs([news[i] for i in idx], [cached[i] for i in idx])
            known.update(zip((keys[i] for i in idx), got.tolist(), strict=True))
            if progress and n % 50 == 0:
                print(f"  cross-encoder: {s + len(idx)}/{len(todo)} pairs, {time.perf_counter() - t0:.0f}s", flush=True)
        save_npz_atomic(store, keys=np.array(list(known)), vals=np.array(list(known.values()), dtype=np.float32))
    return np.array([known[k] for k in keys], dtype=np.float32)


def refused(news: list[str], cached: list[str], cfg: CacheConfig, cross: Path) -> np.ndarray:
    """Which pairs the cross-encoder scores 0 as a one-run substitution, as semantic.py decides it (CrossVerifier
    substitutions by cache.cross_long_substitution_words / cross_short_substitution_words; the near-synonym
    exception: no run names something, the runs' MiniLM cosine >= cross_substitution_synonym_cosine, their
    cross-encoder score >= cross_substitution_synonym_score and, when set, near_synonym.probability >=
    cross_substitution_synonym_probability): bool [N]."""
    cv = CrossVerifier(cross, long_substitution_words=cfg.cross_long_substitution_words,
                       short_substitution_words=cfg.cross_short_substitution_words)
    swaps = cv._substitutions(news, cached, cv._tok.lengths(news, cached))
    out = np.array([s is not None for s in swaps])
    idx = np.array([i for i, s in enumerate(swaps) if s is not None and not s.refused], dtype=int)
    if cfg.cross_substitution_synonym_cosine is not None and len(idx):
        u = embed_cached([swaps[i].new for i in idx])  # type: ignore[union-attr]
        v = embed_cached([swaps[i].cached for i in idx])  # type: ignore[union-attr]
        rs = cross_scores([swaps[i].new for i in idx], [swaps[i].cached for i in idx], cross)  # type: ignore
        out[idx] = ((u * v).sum(1) < cfg.cross_substitution_synonym_cosine) | (
            rs < cfg.cross_substitution_synonym_score)
        if cfg.cross_substitution_synonym_probability is not None:
            runs = [(swaps[i].new, swaps[i].cached) for i in idx]  # type: ignore[union-attr]
            vecs = embed_cached([t for a, b in runs for t in near_synonym.texts(a, b)]).reshape(len(idx), 8, -1)
            out[idx] |= np.array([near_synonym.probability(x) for x in vecs]) < (
                cfg.cross_substitution_synonym_probability)
    return out
