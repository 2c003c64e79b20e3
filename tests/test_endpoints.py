"""Weighted, health-aware endpoint choice."""

from __future__ import annotations

import random
from collections import Counter

from semrouter.config.schema import Model
from semrouter.decision.endpoints import EndpointHealth, EndpointPicker


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def model() -> Model:
    return Model(name="m", endpoints=({"address": "a", "port": 1, "weight": 3}, {"address": "b", "port": 1, "weight": 1}))


def test_weighted_choice_follows_weights() -> None:
    picker = EndpointPicker(EndpointHealth(), random.Random(7))
    counts = Counter(picker.pick(model()).address for _ in range(4000))
    assert 0.70 < counts["a"] / 4000 < 0.80


def test_failing_endpoint_is_skipped_then_readmitted() -> None:
    clock = Clock()
    health = EndpointHealth(fail_threshold=3, cooldown_s=10, clock=clock)
    picker = EndpointPicker(health, random.Random(1))
    for _ in range(3):
        health.record("a:1", ok=False, latency_s=0.01)
    assert health.is_down("a:1")
    assert {picker.pick(model()).address for _ in range(200)} == {"b"}
    clock.t = 11.0
    assert not health.is_down("a:1")
    assert "a" in {picker.pick(model()).address for _ in range(200)}
    health.record("a:1", ok=True, latency_s=0.01)
    assert not health.is_down("a:1")


def test_errors_and_latency_reduce_share() -> None:
    health = EndpointHealth(alpha=0.5)
    picker = EndpointPicker(health, random.Random(3))
    m = Model(name="m", endpoints=({"address": "a", "port": 1}, {"address": "b", "port": 1}))
    health.record("a:1", ok=True, latency_s=0.5)
    health.record("b:1", ok=True, latency_s=0.05)
    health.record("a:1", ok=False, latency_s=0.5)
    counts = Counter(picker.pick(m).address for _ in range(2000))
    assert counts["b"] > 3 * counts["a"]


def test_all_down_fails_open() -> None:
    health = EndpointHealth(fail_threshold=1, cooldown_s=100)
    picker = EndpointPicker(health, random.Random(0))
    health.record("a:1", ok=False)
    health.record("b:1", ok=False)
    assert picker.pick(model()).address in {"a", "b"}
