"""Backend health: consecutive failures open a breaker; reconnects back off exponentially."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Breaker:
    """Closed (backend usable) until `threshold` failures in a row; then open until a reconnect succeeds.

    While open, the cache does not call the backend on the request path at all, and the
    maintenance loop tries to reconnect no earlier than `next_try` (initial, 2x, 4x, ... max).
    """

    initial_s: float
    max_s: float
    threshold: int = 3
    failures: int = 0
    open: bool = False
    attempts: int = 0  # reconnect attempts since the breaker opened
    next_try: float = 0.0

    def success(self) -> None:
        self.failures = 0
        self.open = False
        self.attempts = 0

    def failure(self, now: float) -> bool:
        """Record a failed call; True when this failure opened the breaker."""
        self.failures += 1
        if not self.open and self.failures >= self.threshold:
            self.trip(now)
            return True
        return False

    def trip(self, now: float) -> None:
        self.open = True
        self.attempts = 0
        self.next_try = now + self.initial_s

    def reconnect_failed(self, now: float) -> None:
        self.attempts += 1
        self.next_try = now + min(self.max_s, self.initial_s * (2 ** self.attempts))

    def may_reconnect(self, now: float) -> bool:
        return self.open and now >= self.next_try
