"""Cheap text features for the complexity head (numpy + stdlib only).

The same function runs at training time (modelbuild/complexity/) and at runtime (the ONNX analyzer
feeds it to `complexity_head.onnx` when the head declares a `features` input), so the two always agree.
Pure, deterministic, no state; about 100-200 µs per prompt (pure Python regexes).

Columns of `text_features` (F = 12, all float32, roughly 0..1 or small log counts):

  0 log_chars      log1p(number of characters) / 8
  1 log_words      log1p(number of whitespace-separated words) / 6
  2 digit_share    share of characters that are digits
  3 math_share     share of characters that are math symbols (+-*/=^<>%|∑∫√π≤≥≠ ...)
  4 log_numbers    log1p(number of numeric tokens such as 3, 4.5, 1/2, 10^3)
  5 code_markers   log1p(count of code cues: ``` , def/class/return/import words, {}, ;, ==, ->, x[i], f(x))
  6 multi_step     log1p(count of multi-step / reasoning cues: calculate, prove, derive, step, then, ...)
  7 questions      log1p(number of '?')
  8 sentences      log1p(number of sentence ends . ! ? followed by space/end)
  9 negation       1 if the prompt asks for an exception / negation (NOT, EXCEPT, LEAST, false, incorrect)
 10 enumeration    log1p(count of enumerated statements: "I.", "II.", "1)", "(a)", "Statement 1", bullet lines)
 11 upper_share    share of ASCII letters that are upper case (formulae, acronyms, shouting)
"""

from __future__ import annotations

import math
import re

import numpy as np

FEATURE_NAMES: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "digit_share",
    "math_share",
    "log_numbers",
    "code_markers",
    "multi_step",
    "questions",
    "sentences",
    "negation",
    "enumeration",
    "upper_share",
)
NUM_FEATURES = len(FEATURE_NAMES)

_MATH_CHARS = "+-*/=^<>%|~∑∫√π≤≥≠±×÷∞∂∆∇θλμσΩαβγδε"
_DIGITS = "0123456789"
# str.translate with a deletion table counts character classes in C.
_DROP_DIGITS = str.maketrans("", "", _DIGITS)
_DROP_MATH = str.maketrans("", "", _MATH_CHARS)
_NUMBER = re.compile(r"(?<![A-Za-z])\d+(?:[.,/^]\d+)*")
_WORD = re.compile(r"[a-z]+")
_UPPER = re.compile(r"[A-Z]")
_CODE_WORDS = frozenset(
    "def class return import function var let const void printf print elif lambda struct public".split()
)
_CODE_SYMBOLS = re.compile(r"```|[{};]|==|!=|->|=>|(?<=\w)[\[(]\w*[\])]")
_MULTI_STEP_WORDS = frozenset(
    "calculate compute solve prove derive determine evaluate estimate simplify integrate differentiate "
    "step steps then after before first second finally suppose assume given if why explain compare "
    "analyze analyse".split()
)
_MULTI_STEP_PHRASES = ("how many", "how much", "what is the value")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_NEGATION = re.compile(
    r"\b(?:NOT|EXCEPT|LEAST)\b|\b(?:except|least likely|false|incorrect|not true|cannot)\b",
)
# A bullet line: indentation within its own line only. `^\s*` also crossed line breaks, so it was tried from every
# line start of a run of blank lines and read to the run's end each time: quadratic (10,000 newlines: 0.7 s, holding
# the GIL). The counts are the same (the match now starts at the bullet's own line; only white space is skipped).
_ENUM = re.compile(
    r"(?:^|\s)(?:I{1,3}|IV|VI{0,3})\.\s|(?:^|\s)\(?[1-9a-d]\)\s|Statement\s*\d|^[^\S\n]*[-*•]\s",
    re.MULTILINE,
)


def _one(text: str) -> list[float]:
    n_chars = len(text)
    denom = float(max(n_chars, 1))
    digits = n_chars - len(text.translate(_DROP_DIGITS))
    maths = n_chars - len(text.translate(_DROP_MATH))
    lower = text.lower()
    words = _WORD.findall(lower)
    code = sum(1 for w in words if w in _CODE_WORDS) + len(_CODE_SYMBOLS.findall(text))
    steps = sum(1 for w in words if w in _MULTI_STEP_WORDS) + sum(lower.count(p) for p in _MULTI_STEP_PHRASES)
    n_letters = sum(map(len, words))  # ASCII letters
    upper = len(_UPPER.findall(text))
    return [
        math.log1p(n_chars) / 8.0,
        math.log1p(len(text.split())) / 6.0,
        digits / denom,
        maths / denom,
        math.log1p(len(_NUMBER.findall(text))),
        math.log1p(code),
        math.log1p(steps),
        math.log1p(text.count("?")),
        math.log1p(len(_SENTENCE_END.findall(text))),
        1.0 if _NEGATION.search(text) else 0.0,
        math.log1p(len(_ENUM.findall(text))),
        upper / float(max(n_letters, 1)),
    ]


def text_features(texts: list[str]) -> np.ndarray:
    """Features of each text as a float32 array [len(texts), NUM_FEATURES] (columns: FEATURE_NAMES)."""
    out = np.zeros((len(texts), NUM_FEATURES), dtype=np.float32)
    for i, t in enumerate(texts):
        out[i] = _one(t if isinstance(t, str) else str(t))
    return out
