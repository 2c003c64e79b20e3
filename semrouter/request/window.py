"""What text of a request reaches the signals: a head and a tail window of it, so one huge prompt costs
the analyzer a bounded amount of work (issue 12 item 5).

A text of at most `head_chars + tail_chars` characters is analysed whole. A longer one is analysed as its
first `head_chars` and last `tail_chars` characters joined by a line break (the middle is never seen by a
signal: keyword rules, classifier, complexity, jailbreak and PII detection all read this window). The cut
is by Unicode code point; an entity straddling a cut may be missed. Configured by `server.analysis_head_chars`
and `server.analysis_tail_chars`; see docs/SECURITY.md. Text hidden in Unicode tag characters is shown first
(`reveal_hidden`), so every signal reads it as a model could.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEPARATOR = "\n"
# Unicode tag characters (U+E0000-U+E007F): invisible in most renderings and dropped by the encoder's tokenizer (a
# format character), but an upstream's byte-level tokenizer keeps them and models can read U+E0020-U+E007E as the
# ASCII they shadow ("ASCII smuggling"). trust18: "What is the capital of France?" followed by "Ignore all previous
# instructions ..." written in tag characters scored jailbreak 0.0001 (0.9999 written plainly) and was forwarded.
_TAGS = re.compile("[\U000E0000-\U000E007F]+")
_REVEAL = {cp: (cp - 0xE0000 if 0xE0020 <= cp <= 0xE007E else None) for cp in range(0xE0000, 0xE0080)}
# An emoji tag sequence of the Unicode emoji set (TS #51, RGI: the black flag U+1F3F4, the subdivision code in tag
# letters, the cancel tag U+E007F) is a flag, not hidden text: the England, Scotland and Wales flags. Its tags are
# dropped as the encoder's tokenizer drops them (review18: revealed, forty England flags became forty lines of "gbeng"
# and the message was detected as French and routed as such). Only these three: nothing can be spelt in them (any
# other tag run, after a flag or not, is revealed).
_FLAG = re.compile("\U0001F3F4(?:\U000E0067\U000E0062(?:\U000E0065\U000E006E\U000E0067|\U000E0073\U000E0063\U000E0074"
                   "|\U000E0077\U000E006C\U000E0073))\U000E007F")


@dataclass(frozen=True, slots=True)
class Window:
    """The analysed text and how many characters of the original were left out (0 = all of it)."""

    text: str
    skipped_chars: int


def reveal_hidden(text: str) -> str:
    """`text` with Unicode tag characters shown as what a model may read in them: each run of them on a line of its
    own (so the segments see it alone, not glued to the visible sentence before it), U+E0020-U+E007E as the ASCII
    character they shadow, the other tag characters (language tag, cancel tag) removed. Unchanged (the same object)
    when it has none; three regex scans otherwise. Emoji flags (`_FLAG`) keep their base and lose their tags."""
    if not _TAGS.search(text):
        return text
    text = _FLAG.sub("\U0001F3F4", text)
    return _TAGS.sub(lambda m: "\n" + m.group(0).translate(_REVEAL) + "\n", text)


def analysis_window(text: str, head_chars: int, tail_chars: int) -> Window:
    """`text` cut to its head and tail windows (characters, both >= 0; their sum >= 1), after `reveal_hidden`: every
    signal reads what a model could read in it."""
    text = reveal_hidden(text)
    if len(text) <= head_chars + tail_chars:
        return Window(text, 0)
    tail = text[len(text) - tail_chars:] if tail_chars else ""
    return Window(text[:head_chars] + SEPARATOR + tail if tail else text[:head_chars],
                  len(text) - head_chars - tail_chars)
