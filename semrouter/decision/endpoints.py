"""Choosing one endpoint of a model: weighted, health-aware.

The router keeps, per endpoint, an EWMA of latency and of the error rate observed in the response
phase. An endpoint that fails `fail_threshold` times in a row is skipped for `cooldown_s`, then
re-admitted (its next answer decides). Among the rest the choice is weighted random, the configured
weight divided by (1 + error_rate * 10) and by latency relative to the model's fastest endpoint.
Envoy's retries and outlier detection act after this choice (see envoy/envoy.yaml).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from semrouter.config.schema import Endpoint, Model


@dataclass(slots=True)
class _Stats:
    latency_s: float = 0.0
    error_rate: float = 0.0
    consecutive_failures: int = 0
    down_until: float = 0.0
    samples: int = 0


class EndpointHealth:
    """Observed health of upstream endpoints, keyed by "host:port". One instance per router process."""

    def __init__(self, alpha: float = 0.2, fail_threshold: int = 3, cooldown_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._alpha = alpha
        self._fail_threshold = fail_threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._stats: dict[str, _Stats] = {}

    def record(self, endpoint: str, ok: bool, latency_s: float | None = None) -> None:
        s = self._stats.setdefault(endpoint, _Stats())
        a = self._alpha
        s.error_rate = (1 - a) * s.error_rate + a * (0.0 if ok else 1.0)
        if latency_s is not None:
            s.latency_s = latency_s if s.samples == 0 else (1 - a) * s.latency_s + a * latency_s
        s.samples += 1
        if ok:
            s.consecutive_failures = 0
            s.down_until = 0.0
        else:
            s.consecutive_failures += 1
            if s.consecutive_failures >= self._fail_threshold:
                s.down_until = self._clock() + self._cooldown_s
                s.consecutive_failures = 0  # after the cool-down one more failure is not enough to re-eject

    def is_down(self, endpoint: str) -> bool:
        s = self._stats.get(endpoint)
        return s is not None and self._clock() < s.down_until

    def latency(self, endpoint: str) -> float:
        s = self._stats.get(endpoint)
        return s.latency_s if s is not None else 0.0

    def snapshot(self) -> dict[str, dict[str, float]]:
        return {k: {"latency_s": v.latency_s, "error_rate": v.error_rate, "down": float(self.is_down(k))}
                for k, v in self._stats.items()}

    def weight(self, ep: Endpoint, fastest_s: float) -> float:
        s = self._stats.get(ep.hostport)
        if s is None:
            return float(ep.weight)
        w = ep.weight / (1.0 + 10.0 * s.error_rate)
        if fastest_s > 0 and s.latency_s > 0:
            w *= min(1.0, fastest_s / s.latency_s) ** 0.5
        return w


class EndpointPicker:
    def __init__(self, health: EndpointHealth, rng: random.Random | None = None) -> None:
        self.health = health
        self._rng = rng or random.Random()

    def pick(self, model: Model) -> Endpoint:
        eps = list(model.endpoints)
        if len(eps) == 1:
            return eps[0]
        alive = [e for e in eps if not self.health.is_down(e.hostport)] or eps  # all down: fail open
        fastest = min((x for e in alive if (x := self.health.latency(e.hostport)) > 0), default=0.0)
        weights = [self.health.weight(e, fastest) for e in alive]
        return self._rng.choices(alive, weights=weights, k=1)[0]
