"""Structured PII anywhere in a request, not only in the text the signals classify.

The analyzer reads `routing.classify_text` (by default the last user message), so a model's PII policy would
not see an SSN in the system prompt, an earlier turn, a tool result, a Responses `instructions` or a Messages
`system` block. This step runs the detector's validated patterns (e-mail, phone, card, SSN, IBAN, IP, date of
birth; no encoder, linear in the text) over the message texts the signals did not read
(`ChatRequest.unclassified_text`; each API converted to chat messages), cut to the same head and tail windows
as the signals (request/window.py), and adds what it finds to the analysis. Names and street addresses come from the
encoder's head and stay limited to the classified text.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from semrouter.request.window import analysis_window
from semrouter.signals.types import Analysis, PIIEntity


class PatternDetector(Protocol):
    def detect(self, text: str, token_embeddings: None, offsets: None) -> list[PIIEntity]: ...


def with_whole_request_pii(analysis: Analysis, detector: PatternDetector | None, conversation: str,
                           head_chars: int, tail_chars: int) -> Analysis:
    """`analysis` with the structured entities found in `conversation` (the message texts the signals did not
    read) added to `analysis.pii`; unchanged when there is no detector, no such text or nothing new is found."""
    if detector is None or not conversation:
        return analysis
    window = analysis_window(conversation, head_chars, tail_chars)
    found = detector.detect(window.text, None, None)
    seen = {e.type for e in analysis.pii}
    extra = tuple(e for e in found if e.type not in seen)
    if not extra:
        return analysis
    return dataclasses.replace(analysis, pii=(*analysis.pii, *extra))
