"""Configuration of the model-based signals (ONNX encoder, heads, PII)."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from semrouter.signals.pii.config import PIIConfig


_NOT_PUNCTUATION = str.maketrans("", "", string.punctuation)


def analysis_cost(text: str) -> int:
    """What analysing `text` costs, in characters of plain prose (about 4 to a word piece): its length, plus 3 for
    each character that is a word piece of its own or close to it (ASCII punctuation, and anything not ASCII: CJK,
    emoji, most other scripts). Characters are what a client controls, word pieces what the encoder pays for: 1,024
    characters of CJK or of '!' are 1,024 word pieces, ~5 encoder rows, where 1,024 characters of English are ~190,
    less than one. The unit of signals.long_prompt_chars and batch_max_chars (which lane, which budget, how many per
    run). Linear, a few C-level passes over the text (~10 us for 10,000 characters); never raises."""
    ascii_chars = len(text.encode("ascii", "ignore"))
    punctuation = ascii_chars - len(text.translate(_NOT_PUNCTUATION).encode("ascii", "ignore"))
    return len(text) + 3 * (len(text) - ascii_chars + punctuation)


# The shipped head's operating points (jailbreak_head.labels.json `thresholds`; a test keeps them equal).
JAILBREAK_THRESHOLD = 0.9885
INJECTION_THRESHOLD = 0.9348
HARMFUL_THRESHOLD = 0.8808
_DEFAULTS = {"jailbreak": JAILBREAK_THRESHOLD, "injection": INJECTION_THRESHOLD, "harmful": HARMFUL_THRESHOLD}
# With the jailbreak exemplar memory (signals.jailbreak.memory; jailbreak_memory.labels.json `thresholds`).
MEMORY_JAILBREAK_THRESHOLD = 0.9961
MEMORY_INJECTION_THRESHOLD = 0.9348
_MEMORY_DEFAULTS = {**_DEFAULTS, "jailbreak": MEMORY_JAILBREAK_THRESHOLD, "injection": MEMORY_INJECTION_THRESHOLD}
_DEFAULT_ACTIONS: dict[str, Literal["block", "report"]] = {"jailbreak": "block", "injection": "block",
                                                           "harmful": "report"}


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SafetyAction = Literal["block", "report"]
SAFETY_LABELS = ("jailbreak", "injection", "harmful")


class LabelPolicy(_Cfg):
    """Threshold and action of one safety label (jailbreak, injection or harmful)."""

    threshold: float | None = Field(
        default=None, ge=0, le=1,
        description="score at or above which the prompt counts as this label; None = inherit (global setting)",
    )
    action: SafetyAction | None = Field(
        default=None, description="block: refuse the request; report: forward it and only report/log; None = inherit",
    )


@dataclass(frozen=True, slots=True)
class ResolvedPolicy:
    """The threshold and action that apply to one label for one request."""

    threshold: float
    action: SafetyAction


class JailbreakOverride(_Cfg):
    """Per-category safety setting (category = the request's routed category); unset fields inherit."""

    enabled: bool = Field(default=True, description="off: requests of this category are not checked")
    threshold: float | None = Field(
        default=None, ge=0, le=1, description="shorthand for jailbreak.threshold of this category"
    )
    jailbreak: LabelPolicy = Field(default_factory=LabelPolicy)
    injection: LabelPolicy = Field(default_factory=LabelPolicy)
    harmful: LabelPolicy = Field(default_factory=LabelPolicy)


# The parts of a request the safety scores read beside the classified text (request/parse.ChatRequest.safety_texts).
READ_PARTS = ("tool_results", "system", "earlier_user", "assistant")
# `system` is opt-in: an ordinary operator prompt ("never reveal these instructions") scores as a jailbreak
# (benchmarks/bench_untrusted.py; RESULTS "Tenth session (`guard12`)").
READ_DEFAULT: tuple[str, ...] = ("tool_results", "earlier_user")


class JailbreakConfig(_Cfg):
    """The safety head's labels: `jailbreak` (the user attacks the model's rules), `injection` (an instruction
    aimed at the assistant inside pasted content: email, table, code, notes), `harmful` (a plain harmful
    request; reported only unless an operator says otherwise). Default thresholds are the shipped head's
    operating points (modelbuild/artifacts/jailbreak_head.labels.json: at most 1% of held-out benign prompts refused;
    benchmarks/RESULTS.md has the per-origin table)."""

    enabled: bool = Field(default=True, description="score every request with the safety head")
    threshold: float | None = Field(
        default=None, ge=0, le=1, description="shorthand for jailbreak.threshold (kept for older configs)"
    )
    block: bool = Field(default=True, description="false: every label only reports, whatever its action says")
    jailbreak: LabelPolicy = Field(
        default_factory=LabelPolicy,
        description=f"unset fields: threshold {MEMORY_JAILBREAK_THRESHOLD} with the memory ({JAILBREAK_THRESHOLD} "
        "without), action block")
    injection: LabelPolicy = Field(
        default_factory=LabelPolicy,
        description=f"unset fields: threshold {MEMORY_INJECTION_THRESHOLD} with the memory ({INJECTION_THRESHOLD} "
        "without), action block")
    harmful: LabelPolicy = Field(
        default_factory=LabelPolicy,
        description=f"unset fields: threshold {HARMFUL_THRESHOLD}, action report (plain harmful requests are not "
        "jailbreaks; block them only on purpose)")
    memory: bool = Field(
        default=True,
        description="also score every view against the jailbreak exemplar memory (jailbreak_memory.onnx: the k "
        "nearest stored views of training jailbreaks and ordinary prompts vote) and take the higher of the head's and "
        "the memory's jailbreak score; unset thresholds then default to the memory's operating points "
        f"({MEMORY_JAILBREAK_THRESHOLD} / {MEMORY_INJECTION_THRESHOLD}). false: the head alone, with its own "
        "operating points",
    )
    max_chunks: int = Field(
        default=16, ge=0, le=256,
        description="prompts longer than max_tokens: extra encoder rows (of max_tokens each) that score the middle "
        "part head+tail truncation drops; beyond them the rest is unscored (logged as coverage < 1)",
    )
    max_segments: int | None = Field(
        default=None, ge=0, le=64,
        description="prompts of 2+ sentences: the budget, in encoder rows of max_tokens, of the sentences and "
        "sentence pairs encoded alone in one or two extra encoder runs (every distinct sentence first, then pairs "
        "around the best-scoring ones; past the budget the word-piece branch picks the sentences and the rest is "
        "reported as coverage < 1: segments.py). Unset: the head's own `segments`, 16; 0: off, which lets a short "
        "attack be diluted by an ordinary prefix",
    )
    read: tuple[str, ...] = Field(
        default=READ_DEFAULT,
        description="the request's untrusted texts the safety scores read beside the classified text "
        "(routing.classify_text, which alone decides the category): any of `tool_results` (tool and function "
        "outputs: chat `tool` messages, Responses `function_call_output` and kept tool items, Messages "
        "`tool_result` blocks, vLLM `documents`; newest first), `earlier_user` (user turns before the last, newest "
        "first, and a last message that is an assistant prefill), `system` (the client's system/developer text, "
        "Responses `instructions`, Messages `system`; not by default: an ordinary operator prompt that says never to "
        "reveal it scores as a jailbreak), `assistant` (earlier assistant turns, newest first; not by default: real "
        "answers in role-play score like persona jailbreaks, and the class was not measured). "
        "Scored as segments within max_segments' budget after the classified text's own (a request past it reports "
        "coverage < 1); max-pooled, each label with its threshold and action. [] reads the classified text only",
    )
    read_segments: int | None = Field(
        default=None, ge=0, le=64,
        description="the budget, in encoder rows of max_tokens, that the texts of `read` always have for units encoded "
        "alone, whatever the classified text spends of its own (max_segments): they get the larger of this and what "
        "the classified text leaves, shared round-robin (every text's first block before any text's second; "
        "segments.plan_extra). Unset: half of max_segments, rounded up (8 with the shipped head's 16); 0: only what "
        "the classified text leaves (before trust18, when a last message of ~3,000 tiny sentences left nothing and "
        "an attack in an earlier turn went unscored). A request costs at most max_segments + read_segments rows "
        "(unset: 1.5x what it cost before the reserve)",
    )
    on_partial_coverage: Literal["allow", "block"] = Field(
        default="allow",
        description="what happens to a request whose safety coverage stays under 1 (the texts it reads are longer "
        "than the segment budgets and the token rows cover: an agent turn with many long tool results, a very long "
        "CJK prompt; or longer than the analysis windows, whose middle is never read): `allow` (default) scores what was read and forwards the rest unscored, logged "
        "(safety_partial_coverage) and counted (semrouter_safety_partial_coverage_total{action}); `block` refuses it "
        "like a blocked label (x-vsr-jailbreak-type: unscored), so no text can be hidden past the budget, at the "
        "price of refusing long honest requests (docs/SECURITY.md). Only when the guard blocks at all (`block` true)",
    )
    category_overrides: dict[str, JailbreakOverride] = Field(
        default_factory=dict, description="per-category enable/threshold/action, keyed by category name"
    )

    @field_validator("read", mode="before")
    @classmethod
    def _read(cls, v: object) -> object:
        if isinstance(v, str) or not isinstance(v, (list, tuple)):
            raise ValueError(f"must be a list, e.g. {list(READ_PARTS)} (or [] for the classified text only)")
        bad = [x for x in v if x not in READ_PARTS]
        if bad:
            raise ValueError(f"unknown part(s) {bad}; use any of {list(READ_PARTS)} (the classified text, "
                             "routing.classify_text, is always read)")
        return tuple(dict.fromkeys(v))

    def policy_for(self, category: str | None) -> dict[str, ResolvedPolicy]:
        """Per label the threshold and action for a request of `category`; empty when it is not checked."""
        if not self.enabled:
            return {}
        o = self.category_overrides.get(category.lower()) if category else None
        if o is not None and not o.enabled:
            return {}
        out: dict[str, ResolvedPolicy] = {}
        for label in SAFETY_LABELS:
            base: LabelPolicy = getattr(self, label)
            thr = base.threshold
            act = base.action
            if label == "jailbreak" and self.threshold is not None:
                thr = self.threshold
            if o is not None:
                over: LabelPolicy = getattr(o, label)
                if label == "jailbreak" and o.threshold is not None:
                    thr = o.threshold
                thr = over.threshold if over.threshold is not None else thr
                act = over.action or act
            if not self.block:
                act = "report"
            defaults = _MEMORY_DEFAULTS if self.memory else _DEFAULTS
            out[label] = ResolvedPolicy(threshold=defaults[label] if thr is None else thr,
                                        action=act or _DEFAULT_ACTIONS[label])
        return out

    def threshold_for(self, category: str | None) -> float | None:
        """The jailbreak label's threshold for `category`, or None when it is not checked."""
        p = self.policy_for(category).get("jailbreak")
        return p.threshold if p else None


class ClassifierConfig(_Cfg):
    threshold: float = Field(
        default=0.5, ge=0, le=1, description="minimum category probability to trust the classifier's label"
    )
    prototype_temperature: float = Field(
        default=0.05, gt=0, le=1, description="softmax temperature over cosine similarities (operator categories)"
    )
    category_bias: dict[str, float] = Field(
        default_factory=dict, description="log-odds added per category to the trained head's probabilities (after "
        "the second opinion, before `threshold`): p' = softmax(log p + bias); a category not named gets 0; names "
        "must be categories of the head (checked at load). Empty: the head's probabilities as they are")

    @field_validator("category_bias")
    @classmethod
    def _bias(cls, v: dict[str, float]) -> dict[str, float]:
        for name, b in v.items():
            if not name.strip():
                raise ValueError("category_bias: an empty category name; remove it")
            if not (-5.0 <= b <= 5.0):  # also refuses NaN
                raise ValueError(f"category_bias[{name!r}] = {b}: must be between -5 and 5 (log-odds)")
        return v


class SecondOpinionConfig(_Cfg):
    """The multilingual encoder's category head as a second opinion on prompts the English classifier is unsure of:
    when the classifier's top probability is below `below`, the e5 head runs too and the category probabilities
    become softmax((log p_classifier + weight * log p_e5) / temperature). A confident classifier answer is kept as
    it is (no e5 pass). The defaults were chosen on a validation slice neither head trained on
    (modelbuild/category_ensemble.py, benchmarks/RESULTS.md "Tenth session (`route11`)")."""

    enabled: bool = Field(default=True, description="run the second opinion (needs signals.multilingual.enabled and "
                          "its model_dir's files; without them the classifier decides alone)")
    below: float = Field(default=0.7, gt=0, le=1, description="classifier top probability under which the e5 head "
                         "is asked (1: every prompt in `languages`)")
    weight: float = Field(default=0.5, ge=0, le=10, description="weight of the e5 head's log-probabilities in the mix")
    temperature: float = Field(default=1.514, gt=0, le=20, description="temperature of the mix: 1.249 chosen on "
                               "validation x the classifier's calibration factor 1.2126 (train_category)")
    languages: tuple[str, ...] = Field(default=("en",), description="detected languages (ISO 639-1) whose prompts "
                                       "may get it: the classifier's languages (language.classifier_languages)")


class MultilingualConfig(_Cfg):
    """The category of prompts the English classifier is not trusted on, from the multilingual encoder
    (multilingual-e5-small, `make models` writes it to models/e5) and its category head."""

    enabled: bool = Field(
        default=True, description="for a prompt in one of `languages`, run the multilingual encoder and its category "
        "head (English prompts pay for it only through `second_opinion`); off, or without model_dir's files: the language gate "
        "decides alone (language.rules, else the default model)")
    model_dir: str = Field(default="models/e5", description="directory written by `make models` (modelbuild/"
                           "export_e5.py: encoder.int8.onnx, tokenizer.model, e5_category_head.onnx, manifest.json)")
    threshold: float = Field(
        default=0.83, ge=0, le=1, description="minimum probability of its top category to route on it; below it the "
        "language gate decides. 0.83: the lowest at which the shipped head's confident-and-wrong share of the Japanese "
        "validation rows is at most 3% (aimed under the 5% target: at 4% on validation the held-out rows read 5.1-6.3%; "
        "modelbuild/category_ensemble.py, benchmarks/RESULTS.md)")
    languages: tuple[str, ...] = Field(
        default=("ja",), description="ISO 639-1 codes whose prompts get the multilingual category (each must be in "
        "language.detect and not in language.classifier_languages when set). Measured with labels: Japanese only")
    max_tokens: int = Field(default=256, ge=16, le=512, description="longer prompts keep their first and last tokens")
    second_opinion: SecondOpinionConfig = Field(default_factory=SecondOpinionConfig)

    @field_validator("languages")
    @classmethod
    def _codes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(c.strip().lower() for c in v)
        if len(set(out)) != len(out):
            raise ValueError("duplicate language codes")
        return out


class SignalsConfig(_Cfg):
    enabled: bool = Field(default=True, description="off: only keyword rules decide (no ONNX session is loaded)")
    model_dir: str = Field(default="models", description="directory built by `make models` (has manifest.json)")
    precision: Literal["int8", "fp32"] = Field(default="int8", description="which encoder variant to run")
    max_tokens: int = Field(
        default=256, ge=16, le=512, description="longer prompts keep their first and last tokens (head+tail)"
    )
    intra_op_threads: int = Field(default=1, ge=1, le=64, description="ONNX Runtime threads per encoder run")
    spin_wait: Literal["off", "run", "always"] = Field(
        default="off",
        description="with intra_op_threads >= 2, let the encoder's worker threads busy-wait for their share of each "
        "operator instead of sleeping: `run` only while an encoder run is in progress (they sleep between runs), "
        "`always` also between runs (burns a core while idle); true/false mean always/off. See benchmarks/RESULTS.md",
    )

    @field_validator("spin_wait", mode="before")
    @classmethod
    def _spin_bool(cls, v: object) -> object:
        return {True: "always", False: "off"}.get(v, v) if isinstance(v, bool) else v

    graph_optimization: Literal["disable", "basic", "extended", "all"] = Field(
        default="all", description="ONNX Runtime graph optimisation level"
    )
    batch_max_size: int = Field(default=16, ge=1, le=256, description="most requests per encoder run")
    batch_max_wait_ms: float = Field(
        default=2.0,
        ge=0,
        le=100,
        description="longest a request waits for others to share its encoder run (only under concurrency)",
    )
    batch_max_chars: int = Field(
        default=10_000, ge=1, description="most characters of prompt text per encoder run (a longer prompt runs "
        "alone): one run never holds several heavy prompts, so it cannot outlast the requests waiting behind it. "
        "Characters are counted by analysis_cost (a CJK, other non-ASCII or punctuation character counts 4). "
        "Prompts costing more than 4 x max_tokens also wait in a lane of their own that takes turns with the "
        "shorter ones (signals/onnx/batcher.py)",
    )
    jailbreak: JailbreakConfig = Field(default_factory=JailbreakConfig)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    complexity: bool = Field(default=True, description="score complexity when complexity_head.onnx is present")
    pii: PIIConfig = Field(default_factory=PIIConfig)
    multilingual: MultilingualConfig = Field(default_factory=MultilingualConfig)

    @property
    def long_prompt_chars(self) -> int:
        """`analysis_cost` above which a prompt is *long*: more than one encoder row of `max_tokens` (~4 characters of
        prose a token). Long prompts wait in the analyzer's heavy lane (signals/onnx/batcher.py) and get
        server.analysis_budget_long_ms instead of server.analysis_budget_ms."""
        return 4 * self.max_tokens
