"""Keyword rules: regex or plain keywords combined with OR / AND / NOR, mapped to a category."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from semrouter.config.schema import KeywordRule
from semrouter.signals.types import CategoryVote


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    name: str
    category: str
    operator: str
    patterns: tuple[re.Pattern[str], ...]

    def matches(self, text: str) -> bool:
        hits = (p.search(text) is not None for p in self.patterns)
        if self.operator == "AND":
            return all(hits)
        if self.operator == "NOR":
            return not any(hits)
        return any(hits)


def _compile(rule: KeywordRule) -> _CompiledRule:
    flags = 0 if rule.case_sensitive else re.IGNORECASE
    pats = []
    for k in rule.keywords:
        if rule.regex:
            pats.append(re.compile(k, flags))
        elif rule.whole_word:
            pats.append(re.compile(rf"(?<!\w){re.escape(k)}(?!\w)", flags))
        else:
            pats.append(re.compile(re.escape(k), flags))
    return _CompiledRule(rule.name, rule.category.lower(), rule.operator, tuple(pats))


class KeywordSignal:
    """Evaluates the configured rules in order; the first matching rule wins (confidence 1.0)."""

    def __init__(self, rules: Sequence[KeywordRule]) -> None:
        self._rules = tuple(_compile(r) for r in rules)

    def evaluate(self, text: str) -> CategoryVote | None:
        for r in self._rules:
            if r.matches(text):
                return CategoryVote(category=r.category, confidence=1.0, source=f"keyword:{r.name}")
        return None
