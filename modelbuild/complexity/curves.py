"""Cost-quality curves of a two-model router (numpy only; shared by training and benchmarks).

A router sends a share of requests to the large model; the accuracy it reaches is measured with the
correctness label of whichever model it picked. CPT(x%) = the smallest share sent to the large model at
which the accuracy reaches x% of the large model's own accuracy (Call-Performance Threshold, RouteLLM).
APGR = average performance-gap recovered, the area under the (share, gap-recovered) curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Curve:
    share_large: np.ndarray  # [K+1] 0..1, increasing
    accuracy: np.ndarray  # [K+1]


def curve_from_scores(scores: np.ndarray, small_ok: np.ndarray, large_ok: np.ndarray) -> Curve:
    """Send the k highest-scoring requests to the large model, for k = 0..N (ties broken by index)."""
    n = len(scores)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    gain = large_ok[order].astype(np.float64) - small_ok[order].astype(np.float64)
    acc = (small_ok.sum() + np.concatenate([[0.0], np.cumsum(gain)])) / n
    return Curve(share_large=np.arange(n + 1) / n, accuracy=acc)


def curve_from_groups(
    groups: np.ndarray, group_order: list[str], small_ok: np.ndarray, large_ok: np.ndarray
) -> Curve:
    """Send whole groups to the large model, one group at a time in `group_order` (category routing)."""
    n = len(groups)
    shares, accs = [0.0], [small_ok.mean()]
    picked = np.zeros(n, dtype=bool)
    for g in group_order:
        picked |= groups == g
        shares.append(picked.mean())
        accs.append(np.where(picked, large_ok, small_ok).mean())
    return Curve(share_large=np.array(shares), accuracy=np.array(accs))


def random_curve(small_ok: np.ndarray, large_ok: np.ndarray, points: int = 101) -> Curve:
    """Expected curve of random routing: a straight line from all-small to all-large."""
    s = np.linspace(0.0, 1.0, points)
    return Curve(share_large=s, accuracy=small_ok.mean() + s * (large_ok.mean() - small_ok.mean()))


def cpt(curve: Curve, large_acc: float, fraction: float) -> float:
    """Smallest share to large where accuracy >= fraction * large_acc, linearly interpolated; 1.0 if never."""
    target = fraction * large_acc
    s, a = curve.share_large, curve.accuracy
    hit = np.nonzero(a >= target - 1e-12)[0]
    if len(hit) == 0:
        return 1.0
    i = int(hit[0])
    if i == 0:
        return float(s[0])
    a0, a1 = a[i - 1], a[i]
    t = (target - a0) / (a1 - a0) if a1 != a0 else 1.0
    return float(s[i - 1] + t * (s[i] - s[i - 1]))


def apgr(curve: Curve, small_acc: float, large_acc: float) -> float:
    """Mean over share in [0,1] of (acc - small_acc) / (large_acc - small_acc) (trapezoid rule)."""
    pgr = (curve.accuracy - small_acc) / (large_acc - small_acc)
    s = curve.share_large
    return float(np.sum((pgr[1:] + pgr[:-1]) * np.diff(s)) / 2.0)


def summary(curve: Curve, small_ok: np.ndarray, large_ok: np.ndarray) -> dict[str, float]:
    sa, la = float(small_ok.mean()), float(large_ok.mean())
    return {
        "cpt95": cpt(curve, la, 0.95),
        "cpt50": cpt_gap(curve, sa, la, 0.5),
        "apgr": apgr(curve, sa, la),
        "max_acc": float(curve.accuracy.max()),
    }


def cpt_gap(curve: Curve, small_acc: float, large_acc: float, gap_fraction: float) -> float:
    """Smallest share to large recovering `gap_fraction` of the small->large accuracy gap (RouteLLM CPT)."""
    target = small_acc + gap_fraction * (large_acc - small_acc)
    return cpt(curve, target, 1.0)
