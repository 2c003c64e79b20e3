"""Non-English prompts in spaces of their own (`cache.multilingual`): the multilingual encoder, one space per language.

The cache's vectors and its cross-encoder verifier are English MiniLM models: on the STS pairs of 10 other languages
they served 33.8% of the equivalent ones (benchmarks/RESULTS.md, eighth session `cache9`). A prompt the language
signal detects as one of `multilingual.languages` is instead embedded by multilingual-e5-small (the encoder
signals.multilingual loads for the category; "query: " + text, L2-normalised) and stored and looked up in the space
"e5:<language>" (keys.in_space: part of the scope), so

* e5 vectors are never compared with MiniLM vectors (another scope: neither search nor exact stage crosses it);
* a Spanish prompt is only compared with, and served the answers of, prompts detected as Spanish; an English
  prompt never meets a Spanish entry and the reverse;
* a candidate is served when its e5 cosine is >= `multilingual.threshold` and no veto fires: code or quoted text
  that differ (verbatim.py), meaning-bearing case (casing.py) and the rule families of `multilingual.veto` (those
  that read any language: digits, and the negation words of the Latin- and Cyrillic-script languages). No model
  score: the cross-encoder reads English.

A lookup's e5 vector is kept (bounded, per scope and prompt hash) for the store of the same request's answer, so a
miss that is then stored costs one e5 pass, not two. Without the encoder (signals.multilingual off, no language
signal, or models/e5 missing) `LanguageSpaces.space` is "" for every prompt: today's English path.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from semrouter.cache.config import MultilingualCacheConfig
from semrouter.cache.keys import in_space
from semrouter.cache.types import CacheKey, Embedder, Scope

VECTOR_MEMO = 256  # lookups' e5 vectors kept for the store of their answer (a store follows within seconds)


class LanguageSpaces:
    """Which prompts use a language space, their keys there, and their e5 vectors. Not thread-safe: the event loop
    only."""

    def __init__(self, cfg: MultilingualCacheConfig, embed: Embedder | None, dimension: int) -> None:
        """`embed`: texts -> float32 [N, dim] e5 embeddings (None: no language space, every prompt is English);
        `dimension`: the cache's vector size (a mismatching encoder raises ValueError at its first vector)."""
        self.cfg = cfg
        self._embed = embed if cfg.enabled else None
        self._dimension = dimension
        self._languages = frozenset(cfg.languages)
        self._memo: OrderedDict[tuple[Scope, str], np.ndarray] = OrderedDict()

    @property
    def active(self) -> bool:
        return self._embed is not None

    def space(self, language: str | None) -> str:
        """"e5:<language>" for a prompt detected as one of the configured languages, else "" (English path)."""
        if self._embed is None or language is None or language not in self._languages:
            return ""
        return f"e5:{language}"

    def key(self, key: CacheKey, space: str) -> CacheKey:
        return in_space(key, space)

    async def vector(self, key: CacheKey) -> np.ndarray:
        """float32 [dim]: the e5 embedding of `key.prompt` (a spaced key), remembered for `take`. Raises what the
        encoder raises, and ValueError when its size is not the cache's `dimension`."""
        assert self._embed is not None, "vector() of a cache without a multilingual encoder"
        out = np.asarray(await self._embed([key.prompt]), dtype=np.float32).reshape(-1)
        if out.shape[0] != self._dimension:
            raise ValueError(f"cache.multilingual: the multilingual encoder gives {out.shape[0]} dimensions, the "
                             f"cache stores {self._dimension} (cache.dimension)")
        memo_key = (key.scope, key.prompt_hash)
        self._memo[memo_key] = out
        self._memo.move_to_end(memo_key)
        while len(self._memo) > VECTOR_MEMO:
            self._memo.popitem(last=False)
        return out

    def take(self, key: CacheKey) -> np.ndarray | None:
        """The vector a lookup of this spaced key computed (removed), or None."""
        return self._memo.pop((key.scope, key.prompt_hash), None)
