"""A per-category log-prior correction of the category probabilities (`signals.classifier.category_bias`).

The category head learned from a mix whose categories are far from equal in number, and its probabilities lean to
the frequent ones. `CategoryPrior` adds a fixed log-odds bias per category to every prompt's category
probabilities, after the multilingual second opinion and before the routing threshold:

    p' = softmax(log p + bias)

The shipped biases were fitted on a validation slice neither category head trained on (modelbuild/category_bias.py;
benchmarks/RESULTS.md, "Eleventh session (`route12`)"). Categories without a bias get 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class CategoryPrior:
    """Immutable: a bias [K] over `labels` (the category model's labels, in its order)."""

    def __init__(self, labels: Sequence[str], bias: Mapping[str, float], known: Sequence[str] | None = None) -> None:
        """`known`: every category of the head (default `labels`; the configured categories may be fewer, and a bias
        for a head category not configured is ignored). Raises ValueError naming the key when a bias names none."""
        self.labels = tuple(labels)
        every = tuple(known) if known is not None else self.labels
        unknown = sorted(set(bias) - set(every))
        if unknown:
            raise ValueError(f"signals.classifier.category_bias: {unknown[0]!r} is not a category of the category head "
                             f"(its categories: {', '.join(every)}); fix the name or remove the key")
        self.bias = np.array([float(bias.get(x, 0.0)) for x in self.labels], dtype=np.float64)
        self.bias.setflags(write=False)

    @property
    def is_identity(self) -> bool:
        """True when every bias is 0 (applying it changes nothing)."""
        return not bool(np.any(self.bias))

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """[N,K] float32 softmax(log probs + bias) of probabilities `probs` [N,K] (rows sum to 1). Raises ValueError
        when K differs from the number of labels."""
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != len(self.labels):
            raise ValueError(f"category prior: probabilities of shape {p.shape}, expected [N,{len(self.labels)}]")
        z = np.log(p + 1e-12) + self.bias[None, :]
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
