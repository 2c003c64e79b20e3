"""Structured PII anywhere in a request, not only in the text the signals classify.

The analyzer reads `routing.classify_text` (by default the last user message), so a model's PII policy would
not see an SSN in the system prompt, an earlier turn, a tool result, a Responses `instructions` or a Messages
`system` block. This step runs the detector's validated patterns (e-mail, phone, card, SSN, IBAN, IP, date of
birth; no encoder, linear in the text) over the message texts the signals did not read
(`ChatRequest.unclassified_text`; each API converted to chat messages) and, apart, over the body's tool
definitions (`ChatRequest.definitions_text`), each cut to the same head and tail windows as the signals
(request/window.py; apart, so long tool schemas do not push the conversation out of its window), and adds what it
finds to the analysis. Names and street addresses come from the encoder's head and stay limited to the
classified text.

Tool definitions are the application's documentation for the model: a value a description presents as an example
or a format ("E.164, e.g. +14155552671", "like 203.0.113.7", "format (555) 123-4567") is not data about anyone
and does not count there (review16: 10 of 25 ordinary tool definitions written for the check were refused by a
strict policy for their example values); JSON Schema's sample keywords are not read at all (request/parse.py).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Protocol

from semrouter.request.window import analysis_window
from semrouter.signals.types import Analysis, PIIEntity

# A cue that the value after it (within its own line, a few words on) is an example or a format.
_EXAMPLE_CUE = re.compile(
    r"\b(?:e\.?\s?g|i\.?\s?e|examples?|sample|for\s+instance|such\s+as|like|format(?:ted)?|defaults?|"
    r"placeholder)\b[^\n]{0,16}$",
    re.IGNORECASE,
)


class PatternDetector(Protocol):
    def detect(self, text: str, token_embeddings: None, offsets: None) -> list[PIIEntity]: ...


def with_whole_request_pii(analysis: Analysis, detector: PatternDetector | None, conversation: str,
                           head_chars: int, tail_chars: int, definitions: str = "") -> Analysis:
    """`analysis` with the structured entities found in `conversation` (the message texts the signals did not
    read) and in `definitions` (tool definitions; examples left out: module docstring) added to `analysis.pii`;
    unchanged when there is no detector, no such text or nothing new is found. Window sizes are characters."""
    if detector is None or not (conversation or definitions):
        return analysis
    found: list[PIIEntity] = []
    if conversation:
        found += detector.detect(analysis_window(conversation, head_chars, tail_chars).text, None, None)
    if definitions:
        text = analysis_window(definitions, head_chars, tail_chars).text
        found += (e for e in detector.detect(text, None, None) if not _example(text, e.start))
    seen = {e.type for e in analysis.pii}
    extra = tuple(e for e in found if e.type not in seen)
    if not extra:
        return analysis
    return dataclasses.replace(analysis, pii=(*analysis.pii, *extra))


def _example(text: str, start: int) -> bool:
    """Whether the value at `start` follows an example or format cue on its own line (at most 16 characters on)."""
    line_start = text.rfind("\n", 0, start) + 1
    return _EXAMPLE_CUE.search(text, max(line_start, start - 40), start) is not None
