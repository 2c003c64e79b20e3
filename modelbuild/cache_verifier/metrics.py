"""Precision/recall of cache hits (numpy only; shared by training and the benchmark)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PR:
    served: int
    precision: float
    recall: float


def pr(served: np.ndarray, y: np.ndarray) -> PR:
    n = int(served.sum())
    tp = int((served & y).sum())
    pos = int(y.sum())
    return PR(n, tp / n if n else float("nan"), tp / pos if pos else float("nan"))


def best_recall_at_precision(score: np.ndarray, eligible: np.ndarray, y: np.ndarray,
                             min_precision: float, min_served: int = 50) -> tuple[float, PR]:
    """The lowest score threshold t with precision(eligible & score >= t) >= min_precision
    (and at least `min_served` hits), i.e. the most recall at that precision; (inf, empty) if none."""
    s = np.where(eligible, score, -np.inf)
    order = np.argsort(-s, kind="stable")
    ys = y[order] & np.isfinite(s[order])
    tp = np.cumsum(ys)
    n = np.arange(1, len(s) + 1)
    prec = tp / n
    ok = (prec >= min_precision) & (n >= min_served) & np.isfinite(s[order])
    if not ok.any():
        return float("inf"), PR(0, float("nan"), 0.0)
    k = int(np.nonzero(ok)[0].max())
    t = float(s[order][k])
    return t, pr(eligible & (score >= t), y)
