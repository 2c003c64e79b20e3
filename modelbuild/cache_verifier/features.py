"""Pair features for training/evaluation: embeddings (cached under /tmp) + lexical features."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelbuild.cache_verifier.data import Pair, split_of
from modelbuild.cache_verifier.embed import MODEL, TOKENIZER, embed_cached
from semrouter.cache.config import CacheConfig
from semrouter.cache.learned_verify import lex_vector
from semrouter.cache.verify import Verifier


@dataclass(frozen=True)
class PairSet:
    u: np.ndarray  # [N,384] embedding of b (the new prompt)
    v: np.ndarray  # [N,384] embedding of a (the cached prompt)
    lex: np.ndarray  # [N,F]
    y: np.ndarray  # [N] bool
    veto_ok: np.ndarray  # [N] bool: the shipped veto rules (CacheConfig.verifier_veto) accept the pair
    split: np.ndarray  # [N] 'train' | 'val' | 'test'

    @property
    def cos(self) -> np.ndarray:
        return (self.u * self.v).sum(1)

    def take(self, mask: np.ndarray) -> PairSet:
        return PairSet(self.u[mask], self.v[mask], self.lex[mask], self.y[mask], self.veto_ok[mask],
                       self.split[mask])


def rules_verifier(tokenizer: Path = TOKENIZER) -> Verifier:
    return Verifier.from_tokenizer(tokenizer)


def build(pairs: list[Pair], rules: Verifier, model: Path = MODEL, tokenizer: Path = TOKENIZER,
          threads: int = 2) -> PairSet:
    """Features of (new = b, cached = a) for every pair; embeddings of a and b from one cached run."""
    emb = embed_cached([p.a for p in pairs] + [p.b for p in pairs], model, tokenizer, threads)
    n = len(pairs)
    lex = np.stack([lex_vector(rules.signals(p.b, p.a)) for p in pairs])
    veto = CacheConfig().verifier_veto
    veto_ok = np.array([rules.check(p.b, p.a, veto).ok for p in pairs])
    return PairSet(u=emb[n:], v=emb[:n], lex=lex, y=np.array([p.duplicate for p in pairs]), veto_ok=veto_ok,
                   split=np.array([split_of(p) for p in pairs]))
