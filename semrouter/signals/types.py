"""The shapes every signal produces. The decision engine depends on these only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


# The model-based signals an Analyzer can be asked for (`Analyzer.analyze(want=...)`).
SIGNALS: frozenset[str] = frozenset({"category", "jailbreak", "complexity", "pii"})


@dataclass(frozen=True, slots=True)
class PIIEntity:
    """One piece of personal data found in a text; `start`/`end` are character offsets."""

    type: str  # EMAIL_ADDRESS, PHONE_NUMBER, US_SSN, CREDIT_CARD, IP_ADDRESS, IBAN_CODE, PERSON, STREET_ADDRESS, DATE_OF_BIRTH
    start: int
    end: int
    value: str
    score: float = 1.0


@dataclass(frozen=True, slots=True)
class CategoryVote:
    """A signal's opinion on the request's category."""

    category: str
    confidence: float
    source: str  # e.g. "keyword:math-terms" or "classifier"


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the model-based signals say about one text (None/empty = signal off or failed)."""

    embedding: np.ndarray | None = None  # float32 [dim], L2-normalised
    category_probs: Mapping[str, float] = field(default_factory=dict)  # sums to 1 over the labels
    jailbreak: float | None = None  # the safety head's `jailbreak` score (max over the prompt's windows), 0..1
    # Every safety label's score 0..1 (jailbreak, injection, harmful; max over windows: signals/onnx/safety.py)
    safety: Mapping[str, float] = field(default_factory=dict)
    safety_coverage: float = 1.0  # share of the prompt's tokens the safety scores saw (< 1: a very long prompt)
    pii: tuple[PIIEntity, ...] = ()
    # Routing complexity 0..1 (signals/complexity.py): the head's expected gain of the large model, calibrated so
    # that `routing.quality_target` q sends the request to the large model when complexity >= 1 - q.
    complexity: float | None = None
    small_model_wrong: float | None = None  # the same head's estimate that the small model answers wrongly
    language: str | None = None  # ISO 639-1 code or "und" (signals/language.py), None when not detected here
    # The multilingual encoder's category probabilities (signals.multilingual), only for a prompt whose detected
    # language is in signals.multilingual.languages; empty otherwise (English prompts never get them)
    multilingual_probs: Mapping[str, float] = field(default_factory=dict)
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    errors: tuple[str, ...] = ()  # signals that failed (the request is still routed)


class TextLanguage(Protocol):
    """A language detector: text → ISO 639-1 code or "und" (semrouter.signals.language). `detect` blocks (for a
    worker thread); `detect_async` keeps its costly pass off the event loop."""

    def detect(self, text: str) -> str: ...

    async def detect_async(self, text: str) -> str: ...


async def language_of(detector: TextLanguage | None, text: str, analysis: Analysis | None) -> str | None:
    """The language of `text`: the analyzer's answer (detected beside its encoder run), else `detector`'s (signals
    off or failed; its slow pass runs off the event loop); None when the language signal is off (`detector` None)."""
    if detector is None:
        return None
    if analysis is not None and analysis.language is not None:
        return analysis.language
    return await detector.detect_async(text)


class Analyzer(Protocol):
    """Model-based signals. Implementations batch and run off the event loop."""

    async def analyze(self, text: str, want: frozenset[str] | None = None, deadline: float | None = None,
                      extra: Sequence[str] = ()) -> Analysis:
        """All signals (`want` None) or only the named ones ("category", "jailbreak", "complexity", "pii").
        `deadline` (time.monotonic() s): when the caller stops waiting; an implementation may raise TimeoutError
        at once when it knows it cannot answer by then. `extra`: other texts of the request that the safety scores
        (`jailbreak`) cover too, in priority order (tool results, system prompt, earlier user turns)."""
        ...

    async def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    async def close(self) -> None: ...
