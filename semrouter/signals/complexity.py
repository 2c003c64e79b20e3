"""Calibrating the complexity head's raw score so that the quality-target knob means what it says.

The head (modelbuild/complexity) outputs the expected accuracy gain of the large model, mapped to 0..1.
Its labels file carries `knob_thresholds`: for knob values 0..1, the raw-score threshold above which the
large model should be used, fitted by cross-validation so that the knob ≈ the share of the quality gap
recovered. We report `complexity = 1 - knob(score)`, the inverse of that table, so the decision rule is
simply "large model when complexity ≥ 1 - routing.quality_target" (see decision/engine.wants_large).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KnobTable:
    knobs: tuple[float, ...]  # increasing, from 0 to 1
    thresholds: tuple[float, ...]  # non-increasing raw-score thresholds

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, float]]) -> KnobTable:
        pts = sorted((float(r["knob"]), float(r["threshold"])) for r in rows)
        if len(pts) < 2 or pts[0][0] != 0.0 or pts[-1][0] != 1.0:
            raise ValueError("knob_thresholds must run from knob 0 to knob 1")
        if any(b[1] > a[1] for a, b in zip(pts, pts[1:], strict=False)):
            raise ValueError("knob_thresholds must not increase with the knob")
        return cls(tuple(p[0] for p in pts), tuple(p[1] for p in pts))

    def knob_for(self, score: float) -> float:
        """The smallest knob whose threshold the score reaches (linear between rows)."""
        k, t = self.knobs, self.thresholds
        if score >= t[0]:
            return 0.0
        for i in range(len(k) - 1):
            hi, lo = t[i], t[i + 1]
            if score >= lo:
                frac = (hi - score) / (hi - lo) if hi > lo else 1.0
                return k[i] + frac * (k[i + 1] - k[i])
        return 1.0

    def complexity(self, score: float) -> float:
        return 1.0 - self.knob_for(score)
