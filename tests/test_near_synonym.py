"""semrouter/cache/near_synonym.py: the near-synonym model's shape checks and what it says of sibling words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semrouter.cache import near_synonym

ROOT = Path(__file__).resolve().parent.parent


def test_texts_put_the_two_runs_first_and_probability_checks_its_input() -> None:
    t = near_synonym.texts("quick", "fast")
    assert len(t) == 8 and t[:2] == ["quick", "fast"] and "What is a quick?" in t and "fast, also called quick" in t
    with pytest.raises(ValueError, match=r"\[8, D\]"):
        near_synonym.probability(np.ones((2, 384), np.float32))
    vecs = np.ones((8, 4), np.float32)
    vecs[3] = 0.0  # an embedder that failed for one text: never a near-synonym
    assert near_synonym.probability(vecs) == 0.0
    p = near_synonym.probability(np.random.default_rng(0).normal(size=(8, 16)))
    assert 0.0 <= p <= 1.0


@pytest.mark.skipif(not (ROOT / "models" / "encoder.int8.onnx").is_file(), reason="models/ not built (make models)")
def test_siblings_score_under_synonyms_with_the_shipped_encoder() -> None:
    """Pairs the weights were not fitted on (modelbuild/cache_verifier/near_synonym.py has none of them): siblings
    whose cosine and cross-encoder score passed the near-synonym exception (prefix / suffix, voltage / current)."""
    from modelbuild.cache_verifier.embed import Encoder

    enc = Encoder(threads=1)

    def p(a: str, b: str) -> float:
        return near_synonym.probability(enc(near_synonym.texts(a, b)))

    siblings = [p(a, b) for a, b in (("prefix", "suffix"), ("voltage", "current"), ("acid", "base"),
                                     ("numerator", "denominator"))]
    synonyms = [p(a, b) for a, b in (("big", "large"), ("begin", "start"), ("faster", "quicker"))]
    assert max(siblings) < 0.5 < 0.7 < min(synonyms), (siblings, synonyms)
