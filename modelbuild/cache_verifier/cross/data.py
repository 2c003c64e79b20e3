"""Pair batches for the cross-encoder: the runtime's PairTokenizer (semrouter/cache/cross_verify.py) on the
encoder's tokenizer (models/tokenizer.json), so training and lookup build the same inputs."""

from __future__ import annotations

from pathlib import Path

from semrouter.cache.cross_verify import PairTokenizer

ROOT = Path(__file__).resolve().parents[3]
TOKENIZER = ROOT / "models" / "tokenizer.json"


def pair_tokenizer(max_len: int = 96) -> PairTokenizer:
    """`[CLS] first [SEP] second [SEP]`, truncated longest-first to `max_len` tokens, padded to the longest row."""
    return PairTokenizer(TOKENIZER, max_len)
