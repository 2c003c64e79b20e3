"""A learned check of one PERSON span: is this name a mention of a real person (personal data)?

The PERSON head tags names; most names in ordinary chat prompts are story characters, personas, public figures
or capitalised words, while a name in a letter, a complaint or a record is a person's. This module scores one
span the head found with a small model over what the router already has for the text (no extra encoder run):

- the encoder's token states [T,384] averaged over the span's tokens, over up to `CONTEXT_TOKENS` tokens on
  each side of it, and over the whole text (its kind: a story request, a question about history, a letter);
- scalars: the head's span score, the context cue of person.py, census-list evidence (names.py), the span's
  shape (words, sentence start), other personal data in the text.

Feature version 3 (eleventh session) reads more of the same output: the left and right neighbours apart
instead of one context mean, the head's label probabilities over the span and at its edges (PERSON, O, other
types), the casing pattern of the span, its neighbours and the text (title-case headings), whether the span or
one of its words recurs in the text, its position, a possessive or a comma after it, quotes around it. Version 3
models may have one hidden ReLU layer (`hidden_w`, `hidden_b` in the file) and a linear term beside it (`skip`):
the shipped check is a logistic and three small nets with their logits averaged, which is this one layer.

Trained by `modelbuild/pii/train_person.py` (presidio-generated PERSON spans and the head's own generated
requests naming private people, against the head's spans in benign chat prompts, Quora questions and STS
sentences); the weights, the standardisation and the validated threshold are in
`models/pii_person.json`. Scoring is a [dim, 192] product per span: O(tokens of the text) for the averages.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semrouter.signals.pii.names import NameGazetteer, _words
from semrouter.signals.pii.person import has_personal_cue

PERSON_MODEL_FILE = "pii_person.json"
CONTEXT_TOKENS = 6
FEATURE_VERSION = 3  # what modelbuild writes; 2 (the tenth session's) is still read
FEATURE_VERSIONS = (2, 3)
SCALARS: tuple[str, ...] = ("head_score", "cue", "full_name", "first_listed", "last_listed", "words",
                            "sentence_start", "record", "log_chars", "names_in_text", "extra")
SCALARS_V3: tuple[str, ...] = SCALARS + (
    "p_person_span", "p_o_span", "p_other_span", "p_person_max", "p_person_left", "p_person_right", "p_o_left",
    "p_o_right", "all_title", "any_caps", "text_cased", "title_share", "left_cap", "right_cap", "recurs",
    "word_recurs", "position", "possessive", "comma_after", "quoted", "span_tokens", "digit_share", "log_lines")
_WORDS = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
_POSSESSIVE = re.compile(r"['’]s$")


def scalars_of(version: int) -> tuple[str, ...]:
    """The scalar feature names of a feature version (2 or 3)."""
    return SCALARS if version == 2 else SCALARS_V3


def _span_tokens(offsets: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    """[i, j): the tokens whose character span overlaps [start, end) (specials have (0, 0) and never do)."""
    hit = [k for k, (s, e) in enumerate(offsets) if e > s and s < end and start < e]
    return (hit[0], hit[-1] + 1) if hit else (0, 0)


def _mean(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=0) if len(x) else np.zeros(x.shape[1], dtype=np.float32)


@dataclass(frozen=True, slots=True)
class TextStates:
    """One text's encoder output, read by every span of it: token states [T,dim] and char offsets per token."""

    text: str
    tokens: np.ndarray
    offsets: Sequence[tuple[int, int]]
    text_mean: np.ndarray
    names_in_text: int
    record: bool
    label_probs: np.ndarray | None = None  # [T,3]: P(PERSON), P(O), P(other types) per token (version 3)
    title_share: float = 0.0  # share of the text's words that are capitalised (version 3)
    word_counts: Mapping[str, int] = field(default_factory=dict)  # the text's words as written (version 3)

    @classmethod
    def of(cls, text: str, tokens: np.ndarray, offsets: Sequence[tuple[int, int]], names_in_text: int,
           record: bool, probs: np.ndarray | None = None, labels: Sequence[str] = ()) -> TextStates:
        """`record`: another personal entity (not PERSON) is in the text; `names_in_text`: PERSON spans found;
        `probs` [T,K]: the head's label probabilities (`labels`), needed by feature version 3."""
        real = [k for k, (s, e) in enumerate(offsets) if e > s]
        mean = _mean(tokens[real]) if real else np.zeros(tokens.shape[1], dtype=np.float32)
        lp = None
        if probs is not None and len(labels):
            person = [k for k, lab in enumerate(labels) if lab in ("B-PERSON", "I-PERSON")]
            o = [k for k, lab in enumerate(labels) if lab == "O"]
            pp, po = probs[:, person].sum(1), probs[:, o].sum(1)
            lp = np.stack([pp, po, np.clip(1.0 - pp - po, 0.0, 1.0)], axis=1).astype(np.float32)
        words = _WORDS.findall(text)
        title = sum(w[0].isupper() for w in words) / len(words) if words else 0.0
        return cls(text, tokens, offsets, mean, names_in_text, record, lp, title, Counter(_POSSESSIVE.sub("", w) for w in words))


def span_features(ts: TextStates, start: int, end: int, head_score: float, names: NameGazetteer | None,
                  extra: bool = False, version: int = 2) -> np.ndarray:
    """Feature vector of the PERSON span [start, end) of `ts.text` (float32): version 2 [3*dim + len(SCALARS)],
    version 3 [4*dim + len(SCALARS_V3)] (needs `ts.label_probs`; ValueError without).

    `extra`: the span is one of candidates.py's proposals, not a name of the head's own decoding (`head_score` is
    then its words' mean PERSON probability, below the argmax)."""
    text = ts.text
    i, j = _span_tokens(ts.offsets, start, end)
    lo = max(0, i - CONTEXT_TOKENS)
    hi = min(len(ts.offsets), j + CONTEXT_TOKENS)
    ctx = [k for k in range(lo, hi) if not i <= k < j and ts.offsets[k][1] > ts.offsets[k][0]]
    span_mean = _mean(ts.tokens[i:j])
    ctx_mean = _mean(ts.tokens[ctx]) if ctx else np.zeros_like(span_mean)
    value = text[start:end]
    words = _words(value)
    cased = text != text.lower()
    before = text[max(0, start - 8) : start].rstrip()
    scalars = [
        head_score,
        float(has_personal_cue(text, start, end)),
        float(names is not None and names.full_name(value, cased)),
        float(names is not None and bool(words) and words[0].lower() in names.first),
        float(names is not None and any(w.lower() in names.last for w in words[1:])),
        min(len(words), 4) / 4.0,
        float(not before or before[-1] in ".!?:;\n\"'(-*>•"),
        float(ts.record),
        math.log1p(len(text)) / 10.0,
        min(ts.names_in_text, 8) / 8.0,
        float(extra),
    ]
    if version == 2:
        return np.concatenate([span_mean, ctx_mean, ts.text_mean, np.asarray(scalars, dtype=np.float32)]).astype(
            np.float32)
    if ts.label_probs is None:
        raise ValueError("feature version 3 needs the head's label probabilities (TextStates.of(probs=...))")
    left = [k for k in ctx if k < i]
    right = [k for k in ctx if k >= j]
    scalars += _v3_scalars(ts, start, end, i, j, words)
    return np.concatenate([span_mean, _mean(ts.tokens[left]) if left else np.zeros_like(span_mean),
                           _mean(ts.tokens[right]) if right else np.zeros_like(span_mean), ts.text_mean,
                           np.asarray(scalars, dtype=np.float32)]).astype(np.float32)


def _v3_scalars(ts: TextStates, start: int, end: int, i: int, j: int, words: Sequence[str]) -> list[float]:
    """The scalars version 3 adds (SCALARS_V3 after SCALARS), for the span's tokens [i, j)."""
    text, lp = ts.text, ts.label_probs
    assert lp is not None
    span = lp[i:j] if j > i else np.zeros((1, 3), dtype=np.float32)
    real = [k for k, (s, e) in enumerate(ts.offsets) if e > s]
    lk = max((k for k in real if k < i), default=None)
    rk = min((k for k in real if k >= j), default=None)
    edge = (lambda k, c: float(lp[k, c]) if k is not None else 0.0)
    value = text[start:end]
    lw = _WORDS.findall(text[max(0, start - 40) : start])
    rw = _WORDS.findall(text[end : end + 40])
    after = text[end : end + 3]
    around = text[max(0, start - 2) : start] + text[end : end + 2]
    return [
        float(span[:, 0].mean()), float(span[:, 1].mean()), float(span[:, 2].mean()), float(span[:, 0].max()),
        edge(lk, 0), edge(rk, 0), edge(lk, 1), edge(rk, 1),
        float(bool(words) and all(w[:1].isupper() for w in words)),
        float(any(len(w) > 1 and w.isupper() for w in words)),
        float(text != text.lower()),
        ts.title_share,
        float(bool(lw) and lw[-1][:1].isupper()),
        float(bool(rw) and rw[0][:1].isupper()),
        min(text.count(value) - 1, 3) / 3.0 if value else 0.0,
        min(max((ts.word_counts.get(_POSSESSIVE.sub("", w), 1) for w in _WORDS.findall(value)), default=1) - 1, 3) / 3.0,
        start / max(len(text), 1),
        float(after[:2] in ("'s", "’s")),
        float(after[:1] in (",", ":")),
        float(any(q in around for q in "\"“”«»'‘’`")),
        min(j - i, 8) / 8.0,
        sum(ch.isdigit() for ch in text) / max(len(text), 1),
        math.log1p(text.count("\n")) / 5.0,
    ]


class PersonModel:
    """Logistic model (or one hidden ReLU layer, then a logistic) over `span_features`: P(the span names a real
    person). Immutable; thread-safe."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float,
                 threshold: float, extra_threshold: float | None = None, hidden_w: np.ndarray | None = None,
                 hidden_b: np.ndarray | None = None, version: int = 2, skip: np.ndarray | None = None) -> None:
        """`threshold`: the validated probability a head's name needs; `extra_threshold`: the one an extra
        candidate of candidates.py needs (None: the model was not trained on them, none is proposed).
        `hidden_w` [dim,H] and `hidden_b` [H]: a hidden ReLU layer on the standardised features, then `coef` [H];
        without it `coef` [dim] is read on the standardised features. `skip` [dim]: with a hidden layer, a linear
        term on the standardised features added to the logit (a logistic and a net averaged). `version`: the
        features it reads."""
        if not (mean.shape == scale.shape and mean.ndim == 1):
            raise ValueError(f"pii_person: mean/scale shapes differ: {mean.shape} {scale.shape}")
        if hidden_w is None:
            if coef.shape != mean.shape:
                raise ValueError(f"pii_person: mean/scale/coef shapes differ: {mean.shape} {scale.shape} {coef.shape}")
            self._w = (coef / scale).astype(np.float32)
            self._b = float(intercept - (coef * mean / scale).sum())
            self._hidden: tuple[np.ndarray, np.ndarray] | None = None
        else:
            if hidden_b is None or hidden_w.shape != (mean.shape[0], coef.shape[0]) or hidden_b.shape != coef.shape:
                raise ValueError(f"pii_person: hidden layer shapes {hidden_w.shape} / "
                                 f"{None if hidden_b is None else hidden_b.shape} do not fit {mean.shape} -> "
                                 f"{coef.shape}")
            w1 = hidden_w / scale[:, None]  # the standardisation folded into the first layer
            self._hidden = (w1.astype(np.float32), (hidden_b - (mean / scale) @ hidden_w).astype(np.float32))
            self._w = coef.astype(np.float32)
            self._b = float(intercept)
        self._skip: np.ndarray | None = None
        if skip is not None:
            if self._hidden is None or skip.shape != mean.shape:
                raise ValueError(f"pii_person: skip {skip.shape} needs a hidden layer and the features' shape "
                                 f"{mean.shape}")
            self._skip = (skip / scale).astype(np.float32)
            self._b -= float((skip * mean / scale).sum())
        if version not in FEATURE_VERSIONS:
            raise ValueError(f"pii_person: feature_version {version} not in {FEATURE_VERSIONS}")
        self.version = version
        self.threshold = threshold
        self.extra_threshold = extra_threshold
        self.candidate_floor = 1.01  # what the extra candidates were proposed with in training (load() reads it)
        self.capitalised_runs = False
        # the validated threshold when no extra candidate is proposed (signals.pii.person_candidates: false)
        self.threshold_without_candidates = threshold
        self.dim = mean.shape[0]

    @classmethod
    def load(cls, model_dir: str | Path) -> PersonModel:
        """Read `model_dir/pii_person.json`. Raises FileNotFoundError when missing, ValueError on a bad file."""
        data = json.loads((Path(model_dir) / PERSON_MODEL_FILE).read_text())
        version = data.get("feature_version")
        if version not in FEATURE_VERSIONS:
            raise ValueError(f"{PERSON_MODEL_FILE}: feature_version {version} not in {FEATURE_VERSIONS}; "
                             "run `make models`")
        arr = {k: np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef")}
        hidden = {k: np.asarray(data[k], dtype=np.float64) for k in ("hidden_w", "hidden_b", "skip") if k in data}
        extra = data.get("extra_threshold")
        model = cls(arr["mean"], arr["scale"], arr["coef"], float(data["intercept"]), float(data["threshold"]),
                    None if extra is None else float(extra), hidden.get("hidden_w"), hidden.get("hidden_b"),
                    int(version), hidden.get("skip"))
        if extra is not None:
            model.candidate_floor = float(data["candidate_floor"])
            model.capitalised_runs = bool(data["capitalised_runs"])
            model.threshold_without_candidates = float(data["threshold_without_candidates"])
        return model

    def prob(self, features: np.ndarray) -> float:
        """P(real person) for one feature vector [dim]."""
        x = features
        z = self._b if self._skip is None else self._b + float(x @ self._skip)
        if self._hidden is not None:
            x = np.maximum(x @ self._hidden[0] + self._hidden[1], 0.0)
        z += float(x @ self._w)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
