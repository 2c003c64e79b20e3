"""Sentence segments of a prompt, for safety views that are encoded on their own (no surrounding context).

Token windows of the shared encoder run cannot protect a short attack sentence behind a few ordinary ones:
every token state is contextualised by the whole prompt, so the attack's window reads differently from the
attack alone. The safety head therefore also scores *segments* that go through the encoder by themselves:
each sentence (or line) of the prompt, then each pair of adjacent sentences, up to `max_units` rows. A
segment is scored exactly as if it had been sent as a prompt of its own (safety.SafetyViews.segment_rows),
so an attack of one or two sentences that is refused alone is refused wherever it sits.

The splitter is a small rule set (no dependency on the request path; measured in microseconds): line breaks
always end a segment; inside a line, `.`, `!`, `?` (and `。！？`) followed by white space end a sentence unless
the word before is a common abbreviation or a single letter (an initial). Pieces without a letter or digit
(table rules, bullets) are dropped.
"""

from __future__ import annotations

import re

# A run of sentence marks is matched from its first mark only (the look-behind): tried from every mark of a run
# that no white space follows ("....", 10,000 of them), the search read to the run's end from each, quadratic in
# its length (10 KB: 1.1 s, all of it holding the GIL, so the event loop stood still too).
_BREAK = re.compile(r"(?<![.!?…])[.!?…]+[\"'”’)\]]*\s+|[。！？]+\s*|\n+")
_ABBREV = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e eg ie no fig approx inc ltd co corp dept est jan feb mar apr jun "
    "jul aug sep sept oct nov dec mon tue wed thu fri sat sun u.s a.m p.m".split())
_WORDY = re.compile(r"\w")
_WORD_BEFORE = re.compile(r"[\w.]+$")
_LOOKBACK = 32  # characters read back from a '.' for the word before it: longer than any abbreviation


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans [start, end) of the sentences/lines of `text`, in order, stripped of surrounding white
    space; pieces without any word character are dropped. Never raises; '' -> []."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BREAK.finditer(text):
        end = m.end()
        if "\n" not in m.group(0) and m.group(0)[0] == ".":
            # the word before the '.', read back a bounded stretch: a search from the sentence's start made a run of
            # initials ("a. b. c. ...", never a break) cost time quadratic in its length (10 KB: 1 s)
            w = _WORD_BEFORE.search(text, max(start, m.start() - _LOOKBACK), m.start())
            word = w.group(0).lower().rstrip(".") if w else ""
            if word in _ABBREV or (len(word) == 1 and word.isalpha()):
                continue
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a and _WORDY.search(text, a, b):
            out.append((a, b))
    return out


def segment_units(text: str, max_units: int = 16) -> list[str]:
    """The texts the safety head encodes on their own for `text`: [] when it has fewer than 2 sentences (its
    whole-prompt view already is the sentence); else every sentence, then pairs of adjacent sentences while
    the total stays <= `max_units`. With more than `max_units` sentences, runs of adjacent sentences are
    merged into `max_units` near-equal groups (no pairs). Each unit is a slice of `text`."""
    spans = split_sentences(text)
    n = len(spans)
    if n < 2 or max_units <= 0:
        return []
    if n > max_units:
        cuts = [round(k * n / max_units) for k in range(max_units + 1)]
        return [text[spans[a][0] : spans[b - 1][1]] for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]
    units = [text[a:b] for a, b in spans]
    for i in range(n - 1):
        if len(units) >= max_units:
            break
        units.append(text[spans[i][0] : spans[i + 1][1]])
    return units
