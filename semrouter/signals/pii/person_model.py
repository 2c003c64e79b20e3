"""A learned check of one PERSON span: is this name a mention of a real person (personal data)?

The PERSON head tags names; most names in ordinary chat prompts are story characters, personas, public figures
or capitalised words, while a name in a letter, a complaint or a record is a person's. This module scores one
span the head found with a logistic model over what the router already has for the text (no extra encoder run):

- the encoder's token states [T,384] averaged over the span's tokens, over up to `CONTEXT_TOKENS` tokens on
  each side of it, and over the whole text (its kind: a story request, a question about history, a letter);
- scalars: the head's span score, the context cue of person.py, census-list evidence (names.py), the span's
  shape (words, sentence start), other personal data in the text.

Trained by `modelbuild/pii/train_person.py` (presidio-generated PERSON spans and the head's own generated
requests naming private people, against the head's spans in benign chat prompts, Quora questions and STS
sentences); the weights, the standardisation and the validated threshold are in
`models/pii_person.json`. Scoring is one dot product per span: O(tokens of the text) for the averages.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semrouter.signals.pii.names import NameGazetteer, _words
from semrouter.signals.pii.person import has_personal_cue

PERSON_MODEL_FILE = "pii_person.json"
CONTEXT_TOKENS = 6
FEATURE_VERSION = 2
SCALARS: tuple[str, ...] = ("head_score", "cue", "full_name", "first_listed", "last_listed", "words",
                            "sentence_start", "record", "log_chars", "names_in_text", "extra")


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

    @classmethod
    def of(cls, text: str, tokens: np.ndarray, offsets: Sequence[tuple[int, int]], names_in_text: int,
           record: bool) -> TextStates:
        """`record`: another personal entity (not PERSON) is in the text; `names_in_text`: PERSON spans found."""
        real = [k for k, (s, e) in enumerate(offsets) if e > s]
        mean = _mean(tokens[real]) if real else np.zeros(tokens.shape[1], dtype=np.float32)
        return cls(text, tokens, offsets, mean, names_in_text, record)


def span_features(ts: TextStates, start: int, end: int, head_score: float, names: NameGazetteer | None,
                  extra: bool = False) -> np.ndarray:
    """Feature vector [3*dim + len(SCALARS)] of the PERSON span [start, end) of `ts.text` (float32).

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
    return np.concatenate([span_mean, ctx_mean, ts.text_mean, np.asarray(scalars, dtype=np.float32)]).astype(
        np.float32)


class PersonModel:
    """Logistic model over `span_features`: P(the span names a real person). Immutable; thread-safe."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float,
                 threshold: float, extra_threshold: float | None = None) -> None:
        """`threshold`: the validated probability a head's name needs; `extra_threshold`: the one an extra
        candidate of candidates.py needs (None: the model was not trained on them, none is proposed)."""
        if not (mean.shape == scale.shape == coef.shape and mean.ndim == 1):
            raise ValueError(f"pii_person: mean/scale/coef shapes differ: {mean.shape} {scale.shape} {coef.shape}")
        self._w = (coef / scale).astype(np.float32)
        self._b = float(intercept - (coef * mean / scale).sum())
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
        if data.get("feature_version") != FEATURE_VERSION:
            raise ValueError(f"{PERSON_MODEL_FILE}: feature_version {data.get('feature_version')} != "
                             f"{FEATURE_VERSION}; run `make models`")
        arr = {k: np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef")}
        extra = data.get("extra_threshold")
        model = cls(arr["mean"], arr["scale"], arr["coef"], float(data["intercept"]), float(data["threshold"]),
                    None if extra is None else float(extra))
        if extra is not None:
            model.candidate_floor = float(data["candidate_floor"])
            model.capitalised_runs = bool(data["capitalised_runs"])
            model.threshold_without_candidates = float(data["threshold_without_candidates"])
        return model

    def prob(self, features: np.ndarray) -> float:
        """P(real person) for one feature vector [dim]."""
        z = float(features @ self._w) + self._b
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
