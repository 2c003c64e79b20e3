"""Near-synonym or sibling: whether the two differing runs of a one-run substitution can be read as one another.

A one-word swap of a short prompt is let through to the cross-encoder only as a near-synonym
(cross_verify.substituted, semantic.py). The cosine of the two words alone and the cross-encoder's score of them
rate siblings and converses (landlord / tenant, top / bottom, lender / borrower) like synonyms (big / large): both
are close in meaning. What tells them apart here is how the encoder reads the two words in a few fixed sentences
(MiniLM sentence embeddings, the cache's embedder):

* `cos_q`: the cosine of "What is a A?" and "What is a B?" (higher for synonyms);
* `aka`: the mean cosine of "A, also called B" / "B, also called A" with A and with B, and `another` the same
  for "A is another word for B": a phrase that joins two siblings stays closer to each of them than one that joins
  two synonyms (lower for synonyms);
* `cos`: the cosine of A and B.

P(near-synonym) = sigmoid(w . [cos, aka, another, cos_q] + b) with the weights below, fitted by
modelbuild/cache_verifier/near_synonym.py (logistic regression, C = 10) on its hand-written word pairs (153
synonyms, 175 siblings / converses; none of the chat-synonym or term-swap lists the benchmarks use). Leave-one-out on
those pairs, P >= 0.7 keeps 53 of 153 synonyms and 8 of 175 siblings; the cosine >= 0.6 and cross-encoder >= 0.7
rule before it kept 52 and 39 (benchmarks/RESULTS.md, tenth session `cache12`).

    texts(a, b) -> 8 strings to embed;  probability(vectors [8, D]) -> float in [0, 1]

Pure numpy; the 8 texts go in the cache's one embedding batch per lookup with substitutions.
"""

from __future__ import annotations

import numpy as np

FEATURES: tuple[str, ...] = ("cos", "aka", "another", "cos_q")
WEIGHTS = np.array([0.04157044, -6.51168513, -4.16951765, 6.63097593], dtype=np.float64)
BIAS = 3.1491929
_QUESTION = "What is a {}?"
_AKA = "{}, also called {}"
_ANOTHER = "{} is another word for {}"


def texts(a: str, b: str) -> list[str]:
    """The 8 texts whose embeddings `probability` reads, in its order: a, b, the question of each, and the two
    joining phrases both ways."""
    return [a, b, _QUESTION.format(a), _QUESTION.format(b), _AKA.format(a, b), _AKA.format(b, a),
            _ANOTHER.format(a, b), _ANOTHER.format(b, a)]


def features(vectors: np.ndarray) -> np.ndarray:
    """[cos, aka, another, cos_q] (float64 [4]) of the embeddings of `texts(a, b)` (float [8, D], any norm)."""
    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    a, b = v[0], v[1]

    def joined(i: int) -> float:
        return float((v[i] @ a + v[i] @ b + v[i + 1] @ a + v[i + 1] @ b) / 4)

    return np.array([a @ b, joined(4), joined(6), v[2] @ v[3]], dtype=np.float64)


def probability(vectors: np.ndarray) -> float:
    """P(the two runs are near-synonyms) from the embeddings of `texts(a, b)` (float [8, D]); 0 when a vector is
    all zeros (an embedder that failed). Raises ValueError for another shape."""
    v = np.asarray(vectors)
    if v.ndim != 2 or v.shape[0] != 8:
        raise ValueError(f"near_synonym.probability: want [8, D] embeddings, got {v.shape}")
    if not np.abs(v).sum(axis=1).all():
        return 0.0
    return float(1.0 / (1.0 + np.exp(-(features(v) @ WEIGHTS + BIAS))))
