"""Case that carries meaning: "Translate May into French" is not "Translate may into French".

The encoder is uncased and the answer-neutral rewording rule (equivalent.py) ignores case, so without this
the semantic stage served one of those prompts the other's answer at similarity 1.0, although the exact stage
keeps case. `case_differs(a, b)` is True when the same word is written with capitals in one prompt and in
lower case in the other, in a place where the writer's capitals mean something:

* an acronym (a word of 2+ letters in capitals: US, IT, WHO) against the same word in lower case, unless the
  other prompt has no capital at all (all-lowercase chat typing: "what does us stand for" is ambiguous);
* a capitalised word inside a sentence (May, Polish, Python) against the same word in lower case, when the
  lower-case prompt itself writes capitals inside its sentences (it is written with case, so its "may" is
  the verb). A prompt whose only capitals start sentences or are one letter ("how can I ...") is chat typing.

Words that start a sentence (the first word, a word after . ! ? or a line break) and one-letter words (I, a)
never count, and neither does a prompt written in one case style throughout (most words in capitals, or most
words capitalised: "WHAT IS THE CAPITAL", "What Is The Capital"): its capitals say nothing about one word. Pure function of the two strings, linear in their length.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?\n]\s*$")


def _words(text: str) -> list[tuple[str, bool]]:
    """(word, starts a sentence) for each run of letters."""
    out = []
    for i, m in enumerate(_WORD.finditer(text)):
        before = text[max(0, m.start() - 8):m.start()]
        out.append((m.group(), i == 0 or bool(_SENTENCE_END.search(before))))
    return out


def _styled(words: list[tuple[str, bool]]) -> bool:
    """Whether most words (of 2+ letters) are in capitals, or most are capitalised (a case style, not case)."""
    long = [w for w, _ in words if len(w) >= 2]
    if len(long) < 3:
        return False
    return sum(w.isupper() for w in long) >= 0.8 * len(long) or sum(w[0].isupper() for w in long) >= 0.8 * len(long)


def _acronym(w: str) -> bool:
    return len(w) >= 2 and w.isupper()


def _inner_capitals(words: list[tuple[str, bool]]) -> bool:
    """Whether a prompt writes capitals inside its sentences (beyond one-letter words)."""
    return any(not initial and len(w) >= 2 and any(c.isupper() for c in w) for w, initial in words)


def case_differs(a: str, b: str) -> bool:
    """True when a word's case differs between `a` and `b` where it carries meaning (module docstring)."""
    if a == b:
        return False
    wa, wb = _words(a), _words(b)
    if _styled(wa) or _styled(wb):
        return False
    return _one_way(wa, wb, any(c.isupper() for c in b)) or _one_way(wb, wa, any(c.isupper() for c in a))


def _one_way(capped: list[tuple[str, bool]], lower: list[tuple[str, bool]], lower_has_capitals: bool) -> bool:
    """A capitalised word of `capped` that `lower` writes only in lower case, where that matters."""
    lower_forms: dict[str, set[str]] = {}
    for w, _ in lower:
        lower_forms.setdefault(w.lower(), set()).add(w)
    inner_caps = _inner_capitals(lower)
    for w, initial in capped:
        if initial or len(w) < 2 or w.islower():
            continue
        forms = lower_forms.get(w.lower())
        if not forms or any(not f.islower() for f in forms):
            continue  # the other prompt does not have the word, or also writes it with a capital
        if _acronym(w) and lower_has_capitals:
            return True
        if inner_caps:
            return True
    return False
