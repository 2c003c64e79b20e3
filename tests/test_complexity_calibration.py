"""The knob table turns raw head scores into a complexity the quality-target knob can use directly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semrouter.decision.engine import wants_large
from semrouter.signals.complexity import KnobTable

ROWS = [{"knob": 0.0, "threshold": 1.01}, {"knob": 0.5, "threshold": 0.6}, {"knob": 1.0, "threshold": 0.0}]


def test_inverse_of_the_table_matches_the_knob_rule() -> None:
    t = KnobTable.from_rows(ROWS)
    for score in [0.0, 0.2, 0.55, 0.6, 0.61, 0.8, 1.0]:
        for knob in [0.1, 0.25, 0.5, 0.75, 0.9]:
            # the rule the head was fitted for: large when score >= threshold(knob), linear between rows
            thr = 0.6 + (0.5 - knob) / 0.5 * 0.41 if knob <= 0.5 else 0.6 * (1 - knob) / 0.5
            assert wants_large(t.complexity(score), knob) == (score >= thr - 1e-9), (score, knob)


def test_monotone_and_bounded() -> None:
    t = KnobTable.from_rows(ROWS)
    xs = [t.complexity(s / 100) for s in range(101)]
    assert xs == sorted(xs) and 0.0 <= xs[0] and xs[-1] <= 1.0


def test_bad_tables_are_refused() -> None:
    with pytest.raises(ValueError):
        KnobTable.from_rows([{"knob": 0.2, "threshold": 0.5}, {"knob": 1.0, "threshold": 0.0}])
    with pytest.raises(ValueError):
        KnobTable.from_rows([{"knob": 0.0, "threshold": 0.1}, {"knob": 1.0, "threshold": 0.5}])


def test_shipped_table_loads() -> None:
    p = Path(__file__).resolve().parent.parent / "modelbuild" / "artifacts" / "complexity_head.labels.json"
    t = KnobTable.from_rows(json.loads(p.read_text())["knob_thresholds"])
    assert t.complexity(0.0) == 0.0 and t.complexity(0.99) > 0.9
