"""Prototype (centroid) classifier for operator-defined categories, built at start-up from examples.

Each category's prototype is the L2-normalised mean of its example utterances' embeddings
(`Category.examples`; a category without examples uses "name: description"). A text's category
probabilities are a softmax over cosine similarities divided by a temperature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from semrouter.config.schema import Category


def example_texts(category: Category) -> list[str]:
    """The utterances that define `category` (never empty)."""
    if category.examples:
        return list(category.examples)
    desc = category.description.strip()
    return [f"{category.name}: {desc}" if desc else category.name]


class PrototypeClassifier:
    """Immutable; `probs(embeddings)` is pure numpy and thread-safe."""

    def __init__(self, labels: Sequence[str], centroids: np.ndarray, temperature: float = 0.05) -> None:
        if centroids.shape[0] != len(labels):
            raise ValueError("one centroid per label")
        self.labels: tuple[str, ...] = tuple(labels)
        norms = np.linalg.norm(centroids, axis=1, keepdims=True)
        self.centroids = (centroids / np.maximum(norms, 1e-12)).astype(np.float32)
        self.temperature = temperature

    @classmethod
    def from_examples(
        cls, labels: Sequence[str], examples: Sequence[np.ndarray], temperature: float = 0.05
    ) -> PrototypeClassifier:
        """`examples[i]` holds the [n_i, D] embeddings of label i's utterances."""
        cents = np.stack([np.asarray(e, dtype=np.float32).mean(axis=0) for e in examples])
        return cls(labels, cents, temperature)

    def probs(self, embeddings: np.ndarray) -> np.ndarray:
        """[B,D] L2-normalised embeddings -> [B,K] probabilities (rows sum to 1)."""
        sims = embeddings.astype(np.float32) @ self.centroids.T / self.temperature
        sims -= sims.max(axis=1, keepdims=True)
        e = np.exp(sims)
        return e / e.sum(axis=1, keepdims=True)
