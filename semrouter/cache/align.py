"""Token alignment between two prompts (BERTScore-style): the interaction features a pair of sentence
vectors lacks.

Each prompt's tokens come from the encoder's `token_embeddings` [T,384] (the last hidden state, special
tokens dropped). Every *content* token of one prompt is matched to its most similar token of the other
(greedy max cosine); a reworded prompt has a partner for each content word ("main" ~ "important"), a
prompt with a word of scope added ("... in Europe") or a negation ("not") has a content token with none.

    features(a_tokens, a_content, b_tokens, b_content) -> float32 [len(ALIGN_FEATURES)]

Content tokens: the word pieces of words that are not function words (verify.py's stop list), with
negation and scope words kept as content. Pure numpy, tens of microseconds for two 30-token prompts.
"""

from __future__ import annotations

import re

import numpy as np

from semrouter.cache.verify import _NEGATIONS, _STOP

ALIGN_FEATURES: tuple[str, ...] = (
    "align_p", "align_r", "align_f", "align_min_a", "align_min_b", "align_min2_a", "align_min2_b",
    "align_min3_a", "align_min3_b", "align_worst", "align_all_p", "align_all_r", "unaligned_a", "unaligned_b",
)
UNALIGNED_BELOW = 0.6  # a content token whose best partner is under this cosine counts as unaligned
_UNALIGNED_CAP = 4.0
_KEEP = frozenset("not no never without all some only most least first last every each any few".split())
_WORD = re.compile(r"\w", re.UNICODE)


def content_word(word: str) -> bool:
    """True when `word` (one whitespace/punctuation-delimited word, any case) carries content."""
    w = word.lower()
    if not _WORD.search(w):
        return False  # punctuation
    return w in _KEEP or w in _NEGATIONS or w not in _STOP


def content_mask(text: str, offsets: list[tuple[int, int]], word_ids: list[int | None]) -> np.ndarray:
    """bool [T] for the tokens of one encoding (`offsets`: char spans; `word_ids`: the word each token
    belongs to, None for special tokens): True where the token's word carries content."""
    spans: dict[int, tuple[int, int]] = {}
    for (s, e), w in zip(offsets, word_ids, strict=True):
        if w is None:
            continue
        s0, e0 = spans.get(w, (s, e))
        spans[w] = (min(s0, s), max(e0, e))
    return np.array([w is not None and content_word(text[spans[w][0]:spans[w][1]]) for w in word_ids], dtype=bool)


def _side(sim_max: np.ndarray, content: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """(mean, min, 2nd min, 3rd min, unaligned share) over the content tokens (all tokens when none)."""
    x = np.sort(sim_max[content] if content.any() else sim_max)
    if len(x) == 0:
        return 1.0, 1.0, 1.0, 1.0, 0.0, 1.0
    pick = [float(x[min(i, len(x) - 1)]) for i in range(3)]
    unaligned = min(float((x < UNALIGNED_BELOW).sum()), _UNALIGNED_CAP) / _UNALIGNED_CAP
    return float(x.mean()), pick[0], pick[1], pick[2], unaligned, float(sim_max.mean())


def perfect_alignment() -> np.ndarray:
    """The features of two identically aligned prompts (every cosine 1, nothing unaligned)."""
    out = np.ones(len(ALIGN_FEATURES), dtype=np.float32)
    out[-2:] = 0.0
    return out


def features(a_tokens: np.ndarray, a_content: np.ndarray, b_tokens: np.ndarray, b_content: np.ndarray) -> np.ndarray:
    """Alignment features of prompts a and b, in ALIGN_FEATURES order (cosines in [-1, 1], shares in [0, 1]).

    `*_tokens`: [T,D] token states without special tokens (not necessarily normalised); `*_content`: bool [T].
    Symmetric up to swapping the _a/_b features. An empty side gives perfect-alignment defaults."""
    if len(a_tokens) == 0 or len(b_tokens) == 0:
        return perfect_alignment()
    a = a_tokens / np.maximum(np.linalg.norm(a_tokens, axis=1, keepdims=True), 1e-12)
    b = b_tokens / np.maximum(np.linalg.norm(b_tokens, axis=1, keepdims=True), 1e-12)
    sim = a @ b.T  # [Ta, Tb]
    ra, mina, min2a, min3a, ua, alla = _side(sim.max(1), a_content)  # each token of a -> best of b
    pb, minb, min2b, min3b, ub, allb = _side(sim.max(0), b_content)
    f = 2 * pb * ra / (pb + ra) if pb + ra > 0 else 0.0
    return np.array([pb, ra, f, mina, minb, min2a, min2b, min3a, min3b, min(mina, minb), allb, alla, ua, ub],
                    dtype=np.float32)
