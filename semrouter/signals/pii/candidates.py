"""More PERSON candidates for the learned span check than the head's own spans (pure functions, linear in the text).

The head's BIO decoding (head.py) keeps a word as a name only when PERSON is its most probable label; on
presidio-style documents that misses about a fifth of the gold names (a lone first name in a question, a
surname after a title the head reads as O). The span check (person_model.py) reads the encoder's states of a
span and its context and can judge any span, so this module proposes more of them:

- **low-probability runs**: consecutive words whose PERSON probability (B + I, averaged over the word's
  tokens) is at least `floor` although O or another type won the argmax;
- **capitalised runs** (cased texts only): consecutive capitalised words, name particles ("van", "de")
  inside, that the head did not tag; a lone capitalised word opening a sentence is proposed only when its
  PERSON probability reaches `floor` (every sentence opens with one).

Each candidate passes the same span checks as the head's names (name-shaped words, not a command line, not a
persona or a title: spans.py) and does not overlap a span already found. A candidate never counts by a cue
word or a record alone: only the span check decides (detector.py), at its validated threshold.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence

import numpy as np

from semrouter.signals.pii.context import TextContext
from semrouter.signals.pii.spans import IMPERATIVES, leading_imperative, person_ok
from semrouter.signals.types import PIIEntity

_WORD = re.compile(r"\S+")
_EDGE = ".,;:!?)]}\"'»”’([{«“‘*_"
_PARTICLES = frozenset("van von der den de da di del della du la le bin ibn al el mc mac".split())
MAX_WORDS = 4
_MC = re.compile(r"^Ma?c(?=[A-Z])")

# Capitalised words that are not names wherever they stand (pronouns, articles, question words, weekdays...).
_NOT_NAMES = frozenset("""
i a an the and or but if so to of in on at by for with from as is are was were be it its this that these those
my your his her our their we you he she they me him us them what who whom whose which when where why how
hi hello hey dear thanks thank please yes no not ok okay mr mrs ms dr prof sir madam
monday tuesday wednesday thursday friday saturday sunday january february march april may june july august
september october november december
""".split())


def _person_prob(probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """P(B-PERSON) + P(I-PERSON) per token [T] (zeros when the head has no PERSON labels)."""
    if "B-PERSON" not in labels or "I-PERSON" not in labels:
        return np.zeros(len(probs), dtype=np.float32)
    return probs[:, labels.index("B-PERSON")] + probs[:, labels.index("I-PERSON")]


def _word_probs(text: str, pp: np.ndarray, offsets: Sequence[tuple[int, int]]) -> list[tuple[int, int, float | None]]:
    """Whitespace words of the encoded part of `text` (up to the last token's end: the span check has no token
    states past it) with their mean PERSON probability over their letter/digit tokens (None: no such token)."""
    limit = max((e for _, e in offsets), default=0)
    words = [(m.start(), m.end()) for m in _WORD.finditer(text, 0, limit)]
    starts = [s for s, _ in words]
    total = [0.0] * len(words)
    count = [0] * len(words)
    for t, ((s, e), p) in enumerate(zip(offsets, pp.tolist(), strict=True)):
        if e <= s or not words:
            continue
        w = bisect_right(starts, s) - 1
        if w >= 0 and s < words[w][1] and any(ch.isalnum() for ch in text[s:e]):
            total[w] += p
            count[w] += 1
    return [(s, e, total[k] / count[k] if count[k] else None) for k, (s, e) in enumerate(words)]


def _capitalised(word: str) -> bool:
    """A capitalised word of letters ("Okafor", "O'Neil", "Asante-Mensah", "Jean-luc"), not all capitals, not a
    pronoun, article, weekday or month."""
    core = word.strip(_EDGE)
    parts = [_MC.sub("", p) for p in re.split(r"[-'’]", core)]  # "O'Leary" -> O, Leary; "McDonald" -> Donald
    return (len(core) > 1 and core.lower() not in _NOT_NAMES
            and all(p and p.replace(".", "").isalpha() for p in parts)
            and core[0].isupper() and all(p[1:] == p[1:].lower() for p in parts))


def _opens_sentence(text: str, start: int) -> bool:
    before = text[max(0, start - 8) : start].rstrip()
    return not before or before[-1] in ".!?:;\n\"'(-*>•"


def person_candidates(
    text: str,
    probs: np.ndarray,
    offsets: Sequence[tuple[int, int]],
    labels: Sequence[str],
    floor: float,
    taken: Sequence[PIIEntity],
    capitalised: bool = True,
) -> list[PIIEntity]:
    """PERSON spans beyond the head's argmax (module docstring), sorted by position, none overlapping `taken`.

    `probs` [T,K] are the head's label probabilities for the tokens of `text` (char `offsets` per token, (0,0)
    for specials). A candidate's `score` is its words' mean PERSON probability (what the span check reads as
    the head score). At most `MAX_WORDS` words per candidate; a longer run is not proposed.
    """
    if not len(offsets) or floor > 1.0:
        return []
    pp = _person_prob(probs, labels)
    if not capitalised and not (pp >= floor).any():  # most texts: no word can be proposed
        return []
    words = _word_probs(text, pp, offsets)
    cased = text != text.lower()
    runs: list[tuple[int, int]] = []  # word index ranges [i, j)

    def collect(ok: list[bool]) -> None:
        i = 0
        while i < len(words):
            if not ok[i]:
                i += 1
                continue
            j = i
            while j < len(words) and ok[j] and not (j > i and text[words[j - 1][1] - 1] in ",;:/&.!?"):
                j += 1
            runs.append((i, j))
            i = j

    def cap(s: int, e: int) -> bool:
        return not cased or _capitalised(text[s:e]) or text[s:e].lower() in _PARTICLES

    collect([p is not None and p >= floor and cap(s, e) for s, e, p in words])
    if capitalised and cased:
        collect([cap(s, e) for s, e, _ in words])
    tc = TextContext(text)
    spans = sorted((e.start, e.end) for e in taken)
    out: dict[tuple[int, int], PIIEntity] = {}
    for i, j in runs:
        while i < j and text[words[i][0] : words[i][1]].lower() in _PARTICLES:
            i += 1
        while j > i and text[words[j - 1][0] : words[j - 1][1]].lower() in _PARTICLES:
            j -= 1
        if not 0 < j - i <= MAX_WORDS:
            continue
        start, end = _strip(text, words[i][0], words[j - 1][1])
        start = leading_imperative(text, start, end)
        if end <= start or text[start:end].strip(_EDGE).lower() in IMPERATIVES:
            continue
        ws = [w for w in words[i:j] if w[1] > start]
        if not ws:
            continue
        score = float(np.mean([p if p is not None else 0.0 for _, _, p in ws]))
        single = len(ws) == 1
        if single and _opens_sentence(text, start) and score < floor:
            continue
        if cased and not all(_capitalised(text[s:e]) or text[s:e].lower() in _PARTICLES for s, e, _ in ws):
            continue
        if not person_ok(tc, start, end) or _overlaps(spans, start, end) or (start, end) in out:
            continue
        out[(start, end)] = PIIEntity("PERSON", start, end, text[start:end], round(score, 4))
    return sorted(out.values(), key=lambda e: e.start)


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in _EDGE:
        start += 1
    while end > start and text[end - 1] in _EDGE:
        end -= 1
    if text[end - 2 : end].lower() in ("'s", "’s") and end - 2 > start:
        end -= 2
    return start, end


def _overlaps(spans: Sequence[tuple[int, int]], start: int, end: int) -> bool:
    k = bisect_right(spans, (end, -1))
    return any(s < end and start < e for s, e in spans[max(0, k - 8) : k])
