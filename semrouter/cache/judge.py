"""Why a cache candidate is served or refused: one verdict per candidate, shared by lookup and explain.

The semantic stage finds candidates by cosine; each then gets a `Judgement`:

* `below_threshold`: cosine under the (per-category) pre-filter threshold;
* `verbatim`: the prompts' code or quoted text differ (verbatim.py; always on);
* `case`: a word's case differs where it carries meaning, "May"/"may", "US"/"us" (casing.py; always on);
* a rule family of verify.py that vetoes it (`numbers`, `negation`, `antonym`, `units`, `direction`, `specific`,
  `order`; `digits` where named: cache.multilingual.veto);
* `learned`: the learned verifier's P(same answer) is under `verifier_threshold`, and the prompts are not
  an answer-neutral rewording of each other (equivalent.py; with `accept_equivalent`);
* `hit`: served (the first such candidate, best cosine first).

`MISS_REASONS` is the closed set of values the `reason` label of the miss counter takes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from semrouter.cache.casing import case_differs
from semrouter.cache.equivalent import equivalent
from semrouter.cache.types import Entry
from semrouter.cache.verbatim import verbatim_differs
from semrouter.cache.verify import EXTRA_RULES, RULES, Verifier

VETOES: tuple[str, ...] = ("verbatim", "case", *RULES, *EXTRA_RULES, "learned")
MISS_REASONS: tuple[str, ...] = (
    "category_disabled", "backend_down", "timeout", "error", "no_candidates", "below_threshold", *VETOES,
)


@dataclass(frozen=True, slots=True)
class Judgement:
    """One candidate's verdict. `cosine` in [-1, 1]; `score`: learned P(same answer) or None when unused;
    `veto`: "" or one of VETOES; `verdict`: hit | rejected | below_threshold | not_reached (acceptable,
    but a better candidate was served)."""

    entry: Entry
    cosine: float
    score: float | None
    veto: str
    verdict: str

    def as_dict(self) -> dict[str, Any]:
        return {"entry_id": self.entry.id, "prompt": self.entry.prompt, "cosine": round(self.cosine, 4),
                "verifier_score": None if self.score is None else round(self.score, 4),
                "veto": self.veto, "verdict": self.verdict}


def judge(prompt: str, found: Sequence[tuple[Entry, float]], threshold: float, learned: np.ndarray | None,
          verifier_threshold: float, verifier: Verifier, rules: Collection[str],
          accept_equivalent: bool = True) -> list[Judgement]:
    """Verdicts for `found` (best cosine first). `learned[i]` scores the i-th candidate at or above the
    threshold (None = learned verifier not in use; NaN = not scored: `needs_score` was False). At most one
    candidate gets `hit`."""
    out: list[Judgement] = []
    served = False
    i = 0
    for entry, cos in found:
        if cos < threshold:
            out.append(Judgement(entry, cos, None, "", "below_threshold"))
            continue
        score = None if learned is None or np.isnan(learned[i]) else float(learned[i])
        i += 1
        veto = _veto(prompt, entry.prompt, score, verifier_threshold, verifier, rules, accept_equivalent)
        verdict = "rejected" if veto else ("not_reached" if served else "hit")
        served = served or not veto
        out.append(Judgement(entry, cos, score, veto, verdict))
    return out


def needs_score(prompt: str, cached: str, verifier: Verifier, rules: Collection[str],
                accept_equivalent: bool = True) -> bool:
    """Whether the learned score decides this candidate: no veto fires and it is not an answer-neutral
    rewording (then judge() serves or refuses it without the score)."""
    if _veto(prompt, cached, None, 0.0, verifier, rules, accept_equivalent):
        return False
    return not (accept_equivalent and equivalent(prompt, cached, verifier.common_words))


def served_by_rule(prompt: str, cached: str, verifier: Verifier, rules: Collection[str],
                   accept_equivalent: bool = True) -> bool:
    """Whether judge() serves this candidate without the learned score: no veto fires and it is an
    answer-neutral rewording."""
    return (accept_equivalent and not _veto(prompt, cached, None, 0.0, verifier, rules, accept_equivalent)
            and equivalent(prompt, cached, verifier.common_words))


def _veto(prompt: str, cached: str, score: float | None, verifier_threshold: float, verifier: Verifier,
          rules: Collection[str], accept_equivalent: bool) -> str:
    if verbatim_differs(prompt, cached):
        return "verbatim"
    if case_differs(prompt, cached):
        return "case"
    if rules:
        v = verifier.check(prompt, cached, rules)
        if not v.ok:
            return v.reason.split(":", 1)[0]  # the family only: the rest quotes prompt words
    reworded = accept_equivalent and equivalent(prompt, cached, verifier.common_words)
    if score is not None and score < verifier_threshold and not reworded:
        return "learned"
    return ""


def miss_reason(judgements: Sequence[Judgement]) -> str:
    """The label of a miss: the best candidate's veto, `below_threshold`, or `no_candidates`."""
    if not judgements:
        return "no_candidates"
    for j in judgements:
        if j.verdict == "rejected":
            return j.veto
    return "below_threshold"
