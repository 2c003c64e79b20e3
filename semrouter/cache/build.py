"""Builders for a `SemanticCache`'s parts from its config: the storage backend and the model verifier."""

from __future__ import annotations

from typing import Any

import numpy as np
import structlog

from semrouter.cache.backend_memory import MemoryBackend
from semrouter.cache.config import CacheConfig
from semrouter.cache.cross_verify import CrossVerifier
from semrouter.cache.learned_verify import LearnedVerifier, VerifierModelError
from semrouter.cache.types import CacheBackend
from semrouter.cache.verify import Verifier

log = structlog.get_logger("semrouter.cache")


def make_backend(cfg: CacheConfig) -> CacheBackend:
    """The backend `cfg.backend` names: in-process memory, or Milvus (a local Milvus Lite file mirrored in
    process when `milvus.mirror_local`, bounded by `milvus.mirror_max_bytes`). Not opened yet."""
    if cfg.backend == "memory":
        return MemoryBackend(cfg.dimension)
    from semrouter.cache.backend_milvus import MilvusBackend

    primary = MilvusBackend(cfg.milvus, cfg.dimension, search_timeout_s=max(cfg.lookup_timeout_ms / 1000, 0.01))
    if cfg.milvus.is_local and cfg.milvus.mirror_local:
        from semrouter.cache.backend_mirror import MirroredBackend

        return MirroredBackend(primary, cfg.dimension, cfg.milvus.mirror_max_bytes, cfg.eviction)
    return primary


async def no_embedder(texts: Any) -> np.ndarray:
    """The embedder of a cache opened for management only (CLI): any lookup that needs a vector fails."""
    raise RuntimeError("this cache was opened without an embedder (management only)")


def load_guard(cfg: CacheConfig, rules: Verifier) -> LearnedVerifier | None:
    """The bi-encoder verifier that guards the cross-encoder (`verifier: cross` with cross_guard_threshold > 0)
    if it loads and fits; else None (warned when it was asked for: the cross-encoder then decides alone)."""
    if cfg.verifier != "cross" or cfg.cross_guard_threshold <= 0:
        return None
    try:
        guard = LearnedVerifier(cfg.verifier_model, rules)
    except VerifierModelError as e:
        log.warning("bi-encoder guard of the cross-encoder unavailable; the cross-encoder decides alone", error=str(e))
        return None
    if guard.dimension != cfg.dimension or guard.wants_align:
        log.warning("bi-encoder guard of the cross-encoder does not fit (dimension or alignment features); the "
                    "cross-encoder decides alone", model_dimension=guard.dimension, dimension=cfg.dimension)
        return None
    return guard


def load_learned(cfg: CacheConfig, rules: Verifier) -> LearnedVerifier | CrossVerifier | None:
    """The model verifier `cfg.verifier` asks for (learned / both: verifier_model; cross: cross_model) if it
    loads and fits; else None (warned: the cache then verifies with the rules)."""
    if cfg.verifier == "cross":
        try:
            return CrossVerifier(cfg.cross_model, long_substitution_words=cfg.cross_long_substitution_words,
                                 short_substitution_words=cfg.cross_short_substitution_words,
                                 synonym_score=None if cfg.cross_substitution_synonym_cosine is None
                                 else cfg.cross_substitution_synonym_score)
        except VerifierModelError as e:
            log.warning("cross-encoder cache verifier unavailable; verifying with rules", error=str(e),
                        similarity_threshold_at_least=cfg.fallback_similarity_threshold)
            return None
    if cfg.verifier not in ("learned", "both"):
        return None
    try:
        learned = LearnedVerifier(cfg.verifier_model, rules)
    except VerifierModelError as e:
        log.warning("learned cache verifier unavailable; verifying with rules", error=str(e),
                    similarity_threshold_at_least=cfg.fallback_similarity_threshold)
        return None
    if learned.dimension != cfg.dimension:
        log.warning("learned cache verifier does not fit the embedding dimension; verifying with rules",
                    model_dimension=learned.dimension, dimension=cfg.dimension,
                    similarity_threshold_at_least=cfg.fallback_similarity_threshold)
        return None
    return learned
