"""What text of a request reaches the signals: a head and a tail window of it, so one huge prompt costs
the analyzer a bounded amount of work (issue 12 item 5).

A text of at most `head_chars + tail_chars` characters is analysed whole. A longer one is analysed as its
first `head_chars` and last `tail_chars` characters joined by a line break (the middle is never seen by a
signal: keyword rules, classifier, complexity, jailbreak and PII detection all read this window). The cut
is by Unicode code point; an entity straddling a cut may be missed. Configured by `server.analysis_head_chars`
and `server.analysis_tail_chars`; see docs/SECURITY.md.
"""

from __future__ import annotations

from dataclasses import dataclass

SEPARATOR = "\n"


@dataclass(frozen=True, slots=True)
class Window:
    """The analysed text and how many characters of the original were left out (0 = all of it)."""

    text: str
    skipped_chars: int


def analysis_window(text: str, head_chars: int, tail_chars: int) -> Window:
    """`text` cut to its head and tail windows (characters, both >= 0; their sum >= 1)."""
    if len(text) <= head_chars + tail_chars:
        return Window(text, 0)
    tail = text[len(text) - tail_chars:] if tail_chars else ""
    return Window(text[:head_chars] + SEPARATOR + tail if tail else text[:head_chars],
                  len(text) - head_chars - tail_chars)
