"""Backend health: consecutive failures open a breaker; a cheap probe decides when to reconnect.

While the breaker is open the cache does not call the backend on the request path at all. The
maintenance loop probes the backend every `probe_s` seconds (for a Milvus server: a TCP connect, well
under a millisecond on a LAN); a full reconnect (new client, collection check) runs only once the probe
answers. The first answer after a failed probe means the backend has just come back: the reconnect runs
at once, whatever the back-off. Reconnects that fail while the probe answers (a server that accepts
connections but is not ready) back off exponentially: initial, 2x, 4x, ... max.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Breaker:
    """Closed (backend usable) until `threshold` failures in a row; then open until a reconnect succeeds."""

    initial_s: float
    max_s: float
    threshold: int = 3
    probe_s: float = 0.25  # how often an open breaker probes the backend
    failures: int = 0
    open: bool = False
    attempts: int = 0  # reconnect attempts since the breaker opened (or since the backend came back)
    next_try: float = 0.0
    probe_down: bool = False  # the last probe got no answer

    def success(self) -> None:
        self.failures = 0
        self.open = False
        self.attempts = 0
        self.probe_down = False

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

    def probed(self, ok: bool, now: float) -> None:
        """Record a probe's result: an answer after a failed probe allows a reconnect now."""
        if not ok:
            self.probe_down = True
            return
        if self.probe_down:
            self.probe_down = False
            self.attempts = 0
            self.next_try = now

    def reconnect_failed(self, now: float) -> None:
        self.attempts += 1
        self.next_try = now + min(self.max_s, self.initial_s * (2 ** (self.attempts - 1)))

    def may_reconnect(self, now: float) -> bool:
        return self.open and not self.probe_down and now >= self.next_try
