"""What the safety scores mean for one request: block it, report it, or nothing (pure: config + analysis).

Per label (jailbreak, injection, harmful) the config gives a threshold and an action, globally and per
category (`signals.jailbreak`, see semrouter/signals/config.py). A label whose score reaches its threshold
is *detected*; the request is refused when a detected label's action is `block` (the highest such score
names the refusal's type), and detected `report` labels are only logged and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from semrouter.config.schema import Config
from semrouter.signals.types import Analysis


@dataclass(frozen=True, slots=True)
class SafetyVerdict:
    """`blocked_by`: the label that refuses the request (None: forwarded); `detected`: every label at or over
    its threshold with its score (labels in the head's order); `score`: the refusing label's score."""

    blocked_by: str | None = None
    score: float = 0.0
    detected: tuple[tuple[str, float, str], ...] = ()  # (label, score, action)

    @property
    def reported(self) -> tuple[tuple[str, float], ...]:
        """Detected labels that only report."""
        return tuple((lab, s) for lab, s, act in self.detected if act == "report")


NOTHING = SafetyVerdict()


def _scores(analysis: Analysis) -> dict[str, float]:
    if analysis.safety:
        return dict(analysis.safety)
    return {} if analysis.jailbreak is None else {"jailbreak": analysis.jailbreak}


def safety_verdict(cfg: Config, analysis: Analysis | None, category: str | None) -> SafetyVerdict:
    """The verdict for a request routed to `category` (None: no category) given its analysis."""
    if analysis is None:
        return NOTHING
    scores = _scores(analysis)
    if not scores:
        return NOTHING
    detected = []
    for label, pol in cfg.signals.jailbreak.policy_for(category).items():
        s = scores.get(label)
        if s is not None and s >= pol.threshold:
            detected.append((label, s, pol.action))
    if not detected:
        return NOTHING
    blocking = [(s, lab) for lab, s, act in detected if act == "block"]
    if not blocking:
        return SafetyVerdict(detected=tuple(detected))
    score, label = max(blocking)
    return SafetyVerdict(blocked_by=label, score=score, detected=tuple(detected))


def jailbreak_blocked(cfg: Config, analysis: Analysis | None, category: str | None) -> bool:
    """True when any safety label refuses the request."""
    return safety_verdict(cfg, analysis, category).blocked_by is not None
