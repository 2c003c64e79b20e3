"""The language signal: which natural language a prompt is written in, and what routing does with it.

Detection is lingua-language-detector (`lingua`, Rust with Python bindings) restricted to the configured
languages, so its memory and time stay bounded: n-gram models of only those languages are loaded once,
when the runtime is built, and only the first `language.max_chars` characters of a prompt are read. The
result is an ISO 639-1 code from `language.detect` (closed set: metrics label it as is), or `und` when the
text has no letters lingua can judge (digits, code symbols, an empty prompt) or when lingua names a language
outside `classifier_languages` with a confidence under `language.min_confidence` (very short prompts).

Why routing needs it: the shared MiniLM encoder and the heads on it are English-only. On other languages
the category head is confidently wrong (benchmarks/RESULTS.md), so its label is trusted only for the
languages in `language.classifier_languages`; a prompt in any other language goes to the first
`language.rules` entry that names its language (a preferred model, or a category to route as), else to
`routing.default_model`.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

UNDETERMINED = "und"  # ISO 639-2 "undetermined": no letters to judge
ANY_OTHER = "*"  # in a rule: any language outside classifier_languages

# The languages this router is tested on (the STS translations in shared/data), the default set to detect.
DEFAULT_LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "it", "pt", "nl", "pl", "ru", "ja", "zh")


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_codes() -> frozenset[str]:
    from lingua import Language

    return frozenset(lang.iso_code_639_1.name.lower() for lang in Language.all())


def _codes(v: tuple[str, ...], allow_any: bool = False) -> tuple[str, ...]:
    out = tuple(c.strip().lower() for c in v)
    known = _known_codes()
    bad = [c for c in out if c not in known and not (allow_any and c == ANY_OTHER)]
    if bad:
        raise ValueError(f"{bad} are not ISO 639-1 codes lingua knows; use two-letter codes such as 'en', 'es', 'ja'"
                         + (", or '*' for any language outside classifier_languages" if allow_any else ""))
    if len(set(out)) != len(out):
        raise ValueError("duplicate language codes")
    return out


class LanguageRule(_Cfg):
    """Where prompts in `languages` go when the category classifier is not trusted on them."""

    languages: tuple[str, ...] = Field(
        min_length=1, description="ISO 639-1 codes (e.g. [es, ja]); '*' = any language outside classifier_languages")
    model: str | None = Field(default=None, description="send these prompts to this configured model")
    category: str | None = Field(
        default=None, description="route these prompts as this configured category (its model_scores, system "
        "prompt and reasoning switch)")

    @field_validator("languages")
    @classmethod
    def _langs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _codes(v, allow_any=True)

    @field_validator("category")
    @classmethod
    def _lower(cls, v: str | None) -> str | None:
        return v.strip().lower() if v is not None else v

    @model_validator(mode="after")
    def _one_target(self) -> LanguageRule:
        if (self.model is None) == (self.category is None):
            raise ValueError("set exactly one of `model` (a preferred model) or `category` (a category to route as)")
        return self


class LanguageConfig(_Cfg):
    """The language signal (lingua) and the per-language routing rules."""

    enabled: bool = Field(default=True, description="detect the prompt's language (x-vsr-language)")
    detect: tuple[str, ...] = Field(
        default=DEFAULT_LANGUAGES, min_length=1,
        description="ISO 639-1 codes lingua chooses among (only their models are loaded; fewer = less memory)")
    low_accuracy: bool = Field(
        default=False, description="lingua's low-accuracy mode only: 26 MB instead of ~320 MB resident, but 96.8% "
        "instead of 98.4% on the STS sentences of the 11 default languages (benchmarks/RESULTS.md); false: a "
        "low-accuracy screen, then high accuracy unless the screen is sure of a classifier language")
    max_chars: int = Field(default=400, ge=16, le=10000, description="characters of the prompt that are read")
    min_confidence: float = Field(
        default=0.4, ge=0, le=1,
        description="a language outside classifier_languages is reported only when lingua's confidence in it is at "
        "least this; else `und` (the classifier decides). Short English prompts ('hello', 'be brief') otherwise "
        "read as Italian or Dutch. 0.4 chosen on STS rows not used for the reported accuracy")
    classifier_languages: tuple[str, ...] = Field(
        default=("en",), description="languages the category classifier is trusted on (the shipped heads: English)")
    rules: tuple[LanguageRule, ...] = Field(
        default=(), description="first rule naming the prompt's language wins; checked before keyword rules")

    @field_validator("detect", "classifier_languages")
    @classmethod
    def _langs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _codes(v)

    @model_validator(mode="after")
    def _subsets(self) -> LanguageConfig:
        missing = [c for c in self.classifier_languages if c not in self.detect]
        if missing:
            raise ValueError(f"classifier_languages: {missing} are not in `detect`; add them there")
        for i, r in enumerate(self.rules):
            missing = [c for c in r.languages if c != ANY_OTHER and c not in self.detect]
            if missing:
                raise ValueError(f"rules[{i}].languages: {missing} are not in `detect`; add them there or remove "
                                 "them here")
        return self

    def trusted(self, language: str | None) -> bool:
        """Whether the category classifier may route a prompt in `language`. Not detected (None) and `und` (no
        letters: numbers, symbols) are language-neutral and stay with the classifier, as before this signal."""
        return (not self.enabled or language is None or language == UNDETERMINED
                or language in self.classifier_languages)

    def rule_for(self, language: str | None) -> LanguageRule | None:
        """The first rule for `language`, only when the classifier is not trusted on it."""
        if self.trusted(language):
            return None
        for r in self.rules:
            if language in r.languages or ANY_OTHER in r.languages:
                return r
        return None


SCREEN_CONFIDENCE = 0.7  # the fast pass's confidence at which a classifier language is taken without the second


class LanguageDetector:
    """lingua restricted to `cfg.detect`. `detect(text)` → ISO 639-1 code or `und`. Blocking, for worker threads;
    on the event loop use `await detect_async(text)`, which runs the high-accuracy pass on a worker thread.

    Two passes unless `low_accuracy`: lingua's low-accuracy mode (trigrams, ~4x cheaper) screens the prompt; when
    it names a classifier language (English) with confidence >= SCREEN_CONFIDENCE that is the answer (most
    traffic), otherwise the high-accuracy detector decides. Chosen on STS rows not used for the reported accuracy:
    98.21% vs 98.41% for high accuracy alone there, with ~94% of English prompts settled by the first pass. The
    single high-accuracy pass added ~1.5 ms of router CPU per `auto` request through Envoy (its models are
    ~210 MB; in a tight loop it is 0.12 ms), see benchmarks/RESULTS.md."""

    def __init__(self, cfg: LanguageConfig) -> None:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

        langs = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in cfg.detect]
        self._single = cfg.detect[0] if len(langs) == 1 else None
        self._detector = self._screen = None
        if len(langs) > 1:
            fast = LanguageDetectorBuilder.from_languages(*langs).with_low_accuracy_mode()
            self._screen = fast.with_preloaded_language_models().build()
            self._detector = self._screen if cfg.low_accuracy else (
                LanguageDetectorBuilder.from_languages(*langs).with_preloaded_language_models().build())
        # The high-accuracy pass, off the event loop: one worker per detector, FIFO, its thread made on first use
        # and ended when the detector is dropped (a reload builds a new one). lingua's Rust code holds the GIL for
        # much of a pass (a 64 ms pass on 100,000 characters left the event loop 32 ms late in one run and by the
        # whole pass in a loaded one), so the hop helps only in part: `max_chars` (default 400) is the bound.
        self._second = ThreadPoolExecutor(max_workers=1, thread_name_prefix="language")
        self._max = cfg.max_chars
        self._trusted = frozenset(cfg.classifier_languages)
        self._min_confidence = cfg.min_confidence
        self.labels: tuple[str, ...] = (*cfg.detect, UNDETERMINED)  # every value `detect` can return

    def detect(self, text: str) -> str:
        window = text[: self._max]
        settled, values = self._first_pass(window)
        return settled if settled is not None else self._second_pass(window, values)

    async def detect_async(self, text: str) -> str:
        """`detect(text)`, with the first pass (the low-accuracy screen, tens of microseconds) here and the
        high-accuracy pass, when the screen is not sure, on the shared worker thread. Cancelling the caller
        drops the answer (a started pass finishes on the worker; it reads at most `max_chars`)."""
        window = text[: self._max]
        settled, values = self._first_pass(window)
        if settled is not None:
            return settled
        if self._detector is self._screen:  # low-accuracy mode: the screen's values decide, nothing left to run
            return self._second_pass(window, values)
        return await asyncio.get_running_loop().run_in_executor(self._second, self._second_pass, window, None)

    def _first_pass(self, window: str) -> tuple[str | None, list[Any]]:
        """(the answer when no high-accuracy pass is needed, else None; the screen's confidence values)."""
        if not any(ch.isalpha() for ch in window):
            return UNDETERMINED, []
        if self._detector is None or self._screen is None:
            return self._single or UNDETERMINED, []
        values = self._screen.compute_language_confidence_values(window)
        if values and values[0].value >= SCREEN_CONFIDENCE and (
                values[0].language.iso_code_639_1.name.lower() in self._trusted):
            return values[0].language.iso_code_639_1.name.lower(), values
        return None, values

    def _second_pass(self, window: str, values: list[Any] | None) -> str:
        """The answer for a window the screen did not settle (`values`: the screen's, reused in low-accuracy mode;
        None: run the high-accuracy detector)."""
        if self._detector is not self._screen or values is None:
            assert self._detector is not None
            values = self._detector.compute_language_confidence_values(window)
        if not values or values[0].value <= 0.0:
            return UNDETERMINED
        code = values[0].language.iso_code_639_1.name.lower()
        if code not in self._trusted and values[0].value < self._min_confidence:
            return UNDETERMINED
        return code
