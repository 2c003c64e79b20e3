"""What the safety scores mean for one request: block it, report it, or nothing (pure: config + analysis).

Per label (jailbreak, injection, harmful) the config gives a threshold and an action, globally and per
category (`signals.jailbreak`, see semrouter/signals/config.py). A label whose score reaches its threshold
is *detected*; the request is refused when a detected label's action is `block` (the highest such score
names the refusal's type), and detected `report` labels are only logged and counted.

A request the guard read only in part (`Analysis.safety_coverage` < 1: more text than the segment budgets and the
token rows cover) is refused as `unscored` when `signals.jailbreak.on_partial_coverage` is `block` and some label
would block for its category (its score is then the share left unread); with `allow` (the default) it is judged on
what was read.
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
    blocking = [(s, lab) for lab, s, act in detected if act == "block"]
    if not blocking:
        if partial_coverage_blocks(cfg, analysis, category):
            return SafetyVerdict(blocked_by=UNSCORED, score=1.0 - analysis.safety_coverage, detected=tuple(detected))
        return SafetyVerdict(detected=tuple(detected)) if detected else NOTHING
    score, label = max(blocking)
    return SafetyVerdict(blocked_by=label, score=score, detected=tuple(detected))


UNSCORED = "unscored"  # the refusal type of a request the guard could read only in part (on_partial_coverage: block)


def partial_coverage_blocks(cfg: Config, analysis: Analysis | None, category: str | None) -> bool:
    """Whether `analysis` was read only in part and `signals.jailbreak.on_partial_coverage: block` refuses that for
    a request of `category` (only where some safety label blocks for it: a category the guard does not check, or
    `block: false`, is never refused for length)."""
    if analysis is None or analysis.safety_coverage >= 1.0 or cfg.signals.jailbreak.on_partial_coverage != "block":
        return False
    return any(p.action == "block" for p in cfg.signals.jailbreak.policy_for(category).values())


def jailbreak_blocked(cfg: Config, analysis: Analysis | None, category: str | None) -> bool:
    """True when any safety label refuses the request."""
    return safety_verdict(cfg, analysis, category).blocked_by is not None
