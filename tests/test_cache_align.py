"""Token alignment features (semrouter/cache/align.py) and the encoder pass that feeds them (tokens.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semrouter.cache.align import ALIGN_FEATURES, content_word, features, perfect_alignment
from semrouter.cache.tokens import TokenStates

ROOT = Path(__file__).resolve().parent.parent
ENCODER = ROOT / "models" / "encoder.int8.onnx"
TOKENIZER = ROOT / "models" / "tokenizer.json"
F = {n: i for i, n in enumerate(ALIGN_FEATURES)}


@pytest.fixture(scope="module")
def states() -> TokenStates:
    if not ENCODER.is_file() or not TOKENIZER.is_file():
        pytest.skip("models/ not built (make models)")
    return TokenStates(ENCODER, TOKENIZER)


def _pair(states: TokenStates, cached: str, new: str) -> np.ndarray:
    (ta, ca), (tb, cb) = states([cached, new])
    return features(ta, ca, tb, cb)


def test_content_words_keep_negation_and_scope() -> None:
    assert content_word("not") and content_word("Only") and content_word("volcano") and content_word("all")
    assert not content_word("the") and not content_word("?") and not content_word("is")


def test_hand_made_states() -> None:
    e = np.eye(4, dtype=np.float32)
    same = features(e[:3], np.ones(3, bool), e[:3], np.ones(3, bool))
    assert np.allclose(same[F["align_p"]], 1.0) and same[F["unaligned_b"]] == 0.0
    # b has one content token (e[3]) with no partner in a: its worst cosine is 0, one token unaligned
    added = features(e[:3], np.ones(3, bool), e[:4], np.ones(4, bool))
    assert added[F["align_min_b"]] == pytest.approx(0.0) and added[F["align_min_a"]] == pytest.approx(1.0)
    assert added[F["unaligned_b"]] == pytest.approx(0.25) and added[F["align_worst"]] == pytest.approx(0.0)
    assert np.array_equal(features(e[:0], np.zeros(0, bool), e[:2], np.ones(2, bool)), perfect_alignment())


def test_states_drop_special_tokens_and_mark_content(states: TokenStates) -> None:
    (t, c), = states(["Is the lake deep?"])
    assert t.shape == (5, 384) and t.dtype == np.float32  # is the lake deep ?
    assert c.tolist() == [False, False, True, True, False]


def test_an_added_word_has_no_partner_a_reworded_one_has(states: TokenStates) -> None:
    cached = "Which rivers flow through Portugal?"
    scoped = _pair(states, cached, "Which rivers flow through northern Portugal?")
    same = _pair(states, cached, "Which rivers flow through Portugal?")
    assert same[F["align_worst"]] > 0.99 and same[F["unaligned_b"]] == 0.0
    assert scoped[F["align_min_b"]] < 0.6 < scoped[F["align_min_a"]]
    assert scoped[F["unaligned_b"]] > 0.0
