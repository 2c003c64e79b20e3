"""Answer-neutral rewordings: two prompts that ask for the same thing in the same words.

`equivalent(query, cached)` is True when the prompts' content words are the same after edits that cannot
change what is asked:

* case, punctuation, and the function words of verify.py's stop list ("can you", "please", "the", ...);
* common chat shorthand expanded (u -> you, pls -> please, w/ -> with, bc -> because, ...);
* greetings and politeness ("hi", "thanks in advance", "I'd appreciate your help", "quick question");
* one-letter typos in words of 5+ letters (a letter dropped, doubled, replaced or two swapped), unless
  both spellings are common words (`common`: the encoder's vocabulary): "horse" vs "house" is no typo;
* a phrase moved from the end to the front or back ("in Python, how do I ..." vs "how do I ... in Python").

Words that set the scope (all, some, only, most, first, ...) and negations count as content words; so do the
question words and third-person pronouns (`_ASKED`): "why" is not "what", "his" is not "her". The
function words that carry direction or belonging (to, from, into, of, for, by, with, than, ...; `_DIRECTED`)
count too, except at either end of the prompt (where politeness puts them: "help me with", "I'd like to"),
so "convert miles to km" is not "convert km to miles" and "suffers from which" is not "which from suffers".
A phrase moved from one end to the other may carry or reword its relation word ("using flexbox, how do I
..." vs "how do I ... with flexbox"): rotations are compared without the relation words.

Words are compared as a sequence, so "dog bites man" is not "man bites dog". The semantic stage still
applies its vetoes first (numbers, negation, antonyms, units, direction, code/quotes), and the pair must
pass the cosine pre-filter; this only spares such pairs the learned score. Pure function, microseconds.
"""

from __future__ import annotations

import re

from semrouter.cache.verify import _NEGATIONS, _STOP, _TOKEN, _number, _stem

_SHORTHAND = {
    "u": "you", "r": "are", "ur": "your", "pls": "please", "plz": "please", "thx": "thanks", "ty": "thanks",
    "bc": "because", "b/c": "because", "cuz": "because", "w/": "with", "w/o": "without", "whats": "what is",
    "sth": "something", "smth": "something", "ppl": "people", "im": "i am", "idk": "i do not know",
    "abt": "about", "btw": "", "tho": "though", "rn": "right now", "msg": "message", "info": "information",
}
_SHORT_RE = re.compile(r"(?<![\w/])(" + "|".join(re.escape(k) for k in sorted(_SHORTHAND, key=len, reverse=True))
                       + r")(?![\w/])", re.I)
_FILLER = frozenset("""
hi hello hey greetings dear thanks thank thx cheers appreciate appreciated grateful kindly question quick
wondering wonder help assist advance much lot really sorry bother just actually basically anyone someone
could would might possible mind let lets let's i'd i'm you'd please plz regards ok okay so well
""".split())
_MAX_ROTATE_WORDS = 40  # longer prompts must keep their word order (bounds the work per candidate)
_SCOPE = frozenset("""
all some any every each both few only most more less least first last other same before after over under
again further than not no nor own very once here there off out up down against between
""".split())
_DIRECTED = frozenset("""
to from into onto of for by with without per vs versus within toward towards through than before after
""".split())


def _content(text: str, trim: bool = True) -> list[str]:
    """Content words in order, with the relation words of `_DIRECTED` kept (`trim`: not at the ends)."""
    t = _SHORT_RE.sub(lambda m: _SHORTHAND[m.group(1).lower()], text)
    out = []
    for tok in _TOKEN.findall(t):
        w = _stem(tok)
        if (w in _STOP or w in _FILLER) and w not in _NEGATIONS and w not in _SCOPE and w not in _DIRECTED:
            continue
        out.append(w)
    lo, hi = 0, len(out)
    while trim and lo < hi and out[lo] in _DIRECTED:
        lo += 1
    while hi > lo and out[hi - 1] in _DIRECTED:
        hi -= 1
    return out[lo:hi]


def _one_edit(a: str, b: str, common: frozenset[str] | None = None) -> bool:
    """Damerau-Levenshtein distance <= 1, for words of 5+ letters, not both in `common`."""
    if min(len(a), len(b)) < 5 or abs(len(a) - len(b)) > 1 or any(c.isdigit() for c in a + b):
        return False
    if common is not None and a in common and b in common:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    s, t = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k in range(len(s)) if s[k] != t[k]), len(s))
    return s[i:] == t[i + 1:]


def _rotated(a: list[str], b: list[str]) -> bool:
    """Whether b is a with a phrase moved from one end to the other (a rotation of the word sequence)."""
    if not 3 <= len(a) == len(b) <= _MAX_ROTATE_WORDS:
        return False
    return any(a[k:] + a[:k] == b for k in range(1, len(a)))


_ASKED = frozenset("what why how when where who whom whose which he him his she her hers they them their theirs".split())


def _asked(text: str) -> list[str]:
    """The question words and third-person pronouns of `text`, sorted: what is asked, and about whom. They are on
    the stop list (so "please tell me" and "what is" do not count as content), but a pair that differs in them asks
    another question ("Why is the sky blue?" / "What is the sky blue?", "his father" / "her father")."""
    t = _SHORT_RE.sub(lambda m: _SHORTHAND[m.group(1).lower()], text)
    return sorted(w for w in (tok.lower() for tok in _TOKEN.findall(t)) if w in _ASKED)


def equivalent(query: str, cached: str, common: frozenset[str] | None = None) -> bool:
    """True when the two prompts ask the same thing in the same words (see module docstring)."""
    if _asked(query) != _asked(cached):
        return False  # another question word or person: not a rewording (the pair model may still decide)
    if _same_words(_content(query), _content(cached), common):
        return True
    # a moved phrase that took (or reworded) its relation word: rotations of the other words only
    a = [w for w in _content(query, trim=False) if w not in _DIRECTED]
    b = [w for w in _content(cached, trim=False) if w not in _DIRECTED]
    return a != b and _same_words(a, b, common, rotations_only=True)


def _same_words(a: list[str], b: list[str], common: frozenset[str] | None, rotations_only: bool = False) -> bool:
    """Whether b is a up to typos (and, unless `rotations_only`, in the same order; else a rotation)."""
    if not a or not b or len(a) != len(b):
        return False
    if any(_number(w) is not None for w in a + b) and [w for w in a if _number(w) is not None] != \
            [w for w in b if _number(w) is not None]:
        return False
    in_a = set(a)
    b = [y if y == x or y in in_a else (x if _one_edit(x, y, common) else y) for x, y in zip(a, b, strict=True)] \
        if a != b else b
    if a == b:
        return not rotations_only
    # a word typo'd in a moved phrase: map each remaining unmatched word of b onto an unmatched one of a
    in_b = set(b)
    unmatched = [x for x in dict.fromkeys(a) if x not in in_b]
    if len(unmatched) <= 3:
        b = [y if y in in_a else next((x for x in unmatched if _one_edit(x, y, common)), y) for y in b]
    return (a == b and not rotations_only) or _rotated(a, b)
