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


Check = tuple[str, bool]
"""A candidate's rule verdict without the model score: (the veto that fires, "" for none; whether the prompts are an
answer-neutral rewording, equivalent.py). `check` computes it; judge() reads it instead of running the rules again."""


def check(prompt: str, cached: str, verifier: Verifier, rules: Collection[str],
          accept_equivalent: bool = True) -> Check:
    """The rules' part of a candidate's verdict (verbatim, case, the `rules` families, the rewording rule), once:
    linear in the prompts' length, ~8 ms per pair of 4,000-character prompts on a loaded 2-core machine."""
    veto = _rule_veto(prompt, cached, verifier, rules)
    return veto, accept_equivalent and not veto and equivalent(prompt, cached, verifier.common_words)


def judge(prompt: str, found: Sequence[tuple[Entry, float]], threshold: float, learned: np.ndarray | None,
          verifier_threshold: float | Sequence[float], verifier: Verifier, rules: Collection[str],
          accept_equivalent: bool = True, checks: Sequence[Check | None] | None = None) -> list[Judgement]:
    """Verdicts for `found` (best cosine first). `learned[i]` scores the i-th candidate at or above the
    threshold (None = learned verifier not in use; NaN = not scored: `needs_score` was False);
    `verifier_threshold`: one for all, or the i-th candidate's (the cross-encoder's per pair length). `checks[i]`: that
    candidate's `check` when the caller already has it (None: computed here). At most one candidate gets `hit`."""
    out: list[Judgement] = []
    served = False
    i = 0
    for entry, cos in found:
        if cos < threshold:
            out.append(Judgement(entry, cos, None, "", "below_threshold"))
            continue
        score = None if learned is None or np.isnan(learned[i]) else float(learned[i])
        known = checks[i] if checks is not None and i < len(checks) else None
        t = verifier_threshold if isinstance(verifier_threshold, float | int) else float(verifier_threshold[i])
        i += 1
        rule, reworded = known or check(prompt, entry.prompt, verifier, rules, accept_equivalent)
        veto = rule or ("learned" if score is not None and score < t and not reworded else "")
        verdict = "rejected" if veto else ("not_reached" if served else "hit")
        served = served or not veto
        out.append(Judgement(entry, cos, score, veto, verdict))
    return out


def needs_score(prompt: str, cached: str, verifier: Verifier, rules: Collection[str],
                accept_equivalent: bool = True) -> bool:
    """Whether the learned score decides this candidate: no veto fires and it is not an answer-neutral
    rewording (then judge() serves or refuses it without the score)."""
    return check(prompt, cached, verifier, rules, accept_equivalent) == ("", False)


def _rule_veto(prompt: str, cached: str, verifier: Verifier, rules: Collection[str]) -> str:
    if verbatim_differs(prompt, cached):
        return "verbatim"
    if case_differs(prompt, cached):
        return "case"
    if rules:
        v = verifier.check(prompt, cached, rules)
        if not v.ok:
            return v.reason.split(":", 1)[0]  # the family only: the rest quotes prompt words
    return ""


def miss_reason(judgements: Sequence[Judgement]) -> str:
    """The label of a miss: the best candidate's veto, `below_threshold`, or `no_candidates`."""
    if not judgements:
        return "no_candidates"
    for j in judgements:
        if j.verdict == "rejected":
            return j.veto
    return "below_threshold"
