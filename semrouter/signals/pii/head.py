"""The learned PERSON / STREET_ADDRESS tagger: an ONNX token-classification head plus BIO decoding.

The head maps the encoder's `token_embeddings` [B,T,384] to `logits` [B,T,K]; its labels
(`O`, `B-PERSON`, `I-PERSON`, ...) are in `pii_head.labels.json`. Decoding works on whole
words (whitespace-separated, word pieces merged) so spans never cut a word in half.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from semrouter.signals.pii.context import TextContext
from semrouter.signals.pii.spans import address_ok, leading_imperative, person_ok
from semrouter.signals.types import PIIEntity

HEAD_FILE = "pii_head.onnx"
LABELS_FILE = "pii_head.labels.json"

_WORD = re.compile(r"\S+")
_TRAIL = ".,;:!?)]}\"'»”’"
_LEAD = "([{\"'«“‘"
_ABBREV = frozenset({"st", "str", "ave", "av", "rd", "dr", "blvd", "ln", "apt", "no", "ct", "pl", "sq", "hwy", "pkwy", "ste"})


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _trim(text: str, start: int, end: int, type_: str) -> tuple[int, int]:
    while start < end and text[start] in _LEAD:
        start += 1
    while end > start:
        if text[end - 1] == "." and type_ == "STREET_ADDRESS":
            tail = re.search(r"(\w+)\.$", text[start:end])
            if tail and tail.group(1).lower() in _ABBREV:
                break
        if text[end - 1] in _TRAIL:
            end -= 1
        elif text[end - 2 : end].lower() in ("'s", "’s") and end - 2 > start:
            end -= 2
        else:
            break
    return start, end


# Common words the tagger sometimes pulls into the edge of a name ("my sister Ana", "Ana pick").
_NOT_NAME_EDGE = frozenset("""
a an the and or but to from for of in on at by with me you him her it us them my his our your their
i we he she they up pick tell ask call text bill wire email cc hi hello hey dear thanks thank
mr mrs ms miss dr prof sir madam mr. mrs. ms. dr. prof.
sister brother mother father mom mum dad son daughter wife husband uncle aunt cousin grandmother
grandfather grandma grandpa friend coworker colleague neighbour neighbor boss manager engineer
person team lead client customer tenant landlord doctor nurse teacher student
""".split())


def _trim_name_edges(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop leading/trailing common words (titles, relations, pronouns) from a PERSON span."""
    words = [(m.start() + start, m.end() + start) for m in _WORD.finditer(text[start:end])]
    while words and text[words[0][0] : words[0][1]].lower().strip(_TRAIL + _LEAD) in _NOT_NAME_EDGE:
        words.pop(0)
    while words and text[words[-1][0] : words[-1][1]].lower().strip(_TRAIL + _LEAD) in _NOT_NAME_EDGE:
        words.pop()
    if not words:
        return start, start
    return _trim(text, words[0][0], words[-1][1], "PERSON")


_VERSIONISH = re.compile(r"\d+\.\d+\.\d+|^(?:v|ver|version|build|release)\b", re.IGNORECASE)
_ACRONYM = re.compile(r"[A-Z0-9]{2,4}")


_STREET_WORDS = frozenset("""street st road rd avenue ave lane ln drive dr boulevard blvd way court ct place pl
square sq terrace close crescent highway hwy parkway pkwy circle cir trail alley row walk gardens park hill
strasse straße str rue avenida via calle platz weg allee gasse viale corso plaza""".split())
_NAME_PARTICLES = frozenset("van von der den de da di del della du la le bin ibn al el st mc mac o".split())


SENTENCE_START_MIN_SCORE = 0.9


def _address_shaped(value: str) -> bool:
    """A street address has a house number, a street word or a capitalised name, and is not a version.

    ("number 3" or "step 2" are not addresses; "12 baker street" and "42 Elm Grove" are.)
    """
    words = re.findall(r"[^\W\d_]+", value)
    if not any(ch.isdigit() for ch in value) or len(value.split()) < 2 or _VERSIONISH.search(value):
        return False
    return (any(w.lower().rstrip(".") in _STREET_WORDS for w in words) or value == value.lower()
            or any(w[0].isupper() for w in words))


def _name_shaped(value: str, cased: bool) -> bool:
    """In a text that uses capitals at all (`cased`), names are capitalised words (particles like "van",
    "de" aside): this drops "three noble gases" or "pirate". A lone short all-caps token ("EAN", "SKU",
    "IBM") is an acronym, not a name. All-lower-case texts keep the head's verdict."""
    if _ACRONYM.fullmatch(value):
        return False
    if not cased:
        return True
    words = [w for w in re.findall(r"[^\W\d_][^\s]*", value) if w.lower() not in _NAME_PARTICLES]
    return bool(words) and all(w[0].isupper() for w in words)


def _sentence_initial_word(text: str, start: int, end: int) -> bool:
    """A single word at the start of a sentence ("Pretend ...", "Name ...") is capitalised anyway."""
    if " " in text[start:end].strip():
        return False
    before = text[max(0, start - 16) : start].rstrip()
    return (not before and start < 16) or (bool(before) and before[-1] in ".!?:;\n\"'(")


def decode_bio(
    text: str,
    probs: np.ndarray,
    offsets: Sequence[tuple[int, int]],
    labels: Sequence[str],
    min_score: float,
) -> list[PIIEntity]:
    """Turn per-token label probabilities [T,K] into whole-word entity spans with a mean score."""
    types = sorted({lab[2:] for lab in labels if lab[:2] in ("B-", "I-")})
    b_idx = {t: labels.index(f"B-{t}") for t in types}
    i_idx = {t: labels.index(f"I-{t}") for t in types}
    o_idx = labels.index("O")
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    starts = [w[0] for w in words]
    # Tokens of each word that carry a letter or digit; punctuation-only tokens do not vote.
    word_tokens: list[list[int]] = [[] for _ in words]
    word_seen = [False] * len(words)
    for t, (s, e) in enumerate(offsets):
        if e <= s or not words:
            continue
        w = bisect_right(starts, s) - 1
        if w < 0 or s >= words[w][1]:
            continue
        word_seen[w] = True
        if any(ch.isalnum() for ch in text[s:e]):
            word_tokens[w].append(t)

    cased = text != text.lower()
    tc = TextContext(text)
    entities: list[PIIEntity] = []
    cur: tuple[str, int, int, list[float]] | None = None  # type, first word, last word, scores

    def close() -> None:
        if cur is None:
            return
        type_, w0, w1, scores = cur
        score = float(np.mean(scores))
        start, end = _trim(text, words[w0][0], words[w1][1], type_)
        if type_ == "PERSON":
            start, end = _trim_name_edges(text, leading_imperative(text, start, end), end)
            if not _name_shaped(text[start:end], cased) or not person_ok(tc, start, end):
                return
            if _sentence_initial_word(text, start, end) and score < SENTENCE_START_MIN_SCORE:
                return
        if type_ == "STREET_ADDRESS" and not (_address_shaped(text[start:end]) and address_ok(tc, start, end)):
            return
        if score >= min_score and end > start:
            entities.append(PIIEntity(type_, start, end, text[start:end], round(score, 4)))

    for w, toks in enumerate(word_tokens):
        if not toks:
            if not word_seen[w]:  # truncated away: nothing known about this word
                close()
                cur = None
            continue  # punctuation-only word: neither extends nor breaks a span
        p = probs[toks].mean(axis=0)
        first = probs[toks[0]]
        best_type, best_p = None, float(p[o_idx])
        for t in types:
            pt = float(p[b_idx[t]] + p[i_idx[t]])
            if pt > best_p:
                best_type, best_p = t, pt
        if best_type is None:
            close()
            cur = None
            continue
        begins = first[b_idx[best_type]] > first[i_idx[best_type]]
        # A predicted B right after a word of the same type only starts a new entity after a
        # separator ("Anna, Bob"); addresses keep their commas ("Flat 3, Smith Road").
        joined = (
            cur is not None
            and cur[0] == best_type
            and (not begins or best_type == "STREET_ADDRESS" or text[words[cur[2]][1] - 1] not in ",;:/&")
        )
        if joined and cur is not None:
            cur = (best_type, cur[1], w, cur[3] + [best_p])
        else:
            close()
            cur = (best_type, w, w, [best_p])
    close()
    return entities


class PIIHead:
    """ONNX session of the token-classification head with its label list."""

    def __init__(self, session: ort.InferenceSession, labels: Sequence[str]) -> None:
        self._session = session
        self.labels: tuple[str, ...] = tuple(labels)

    @classmethod
    def load(cls, model_dir: str | Path, threads: int = 1) -> PIIHead:
        model_dir = Path(model_dir)
        meta = json.loads((model_dir / LABELS_FILE).read_text())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(model_dir / HEAD_FILE), opts, providers=["CPUExecutionProvider"])
        return cls(session, meta["labels"])

    def probs(self, token_embeddings: np.ndarray) -> np.ndarray:
        """Label probabilities [T,K] for one text's token embeddings [T,384]."""
        x = np.ascontiguousarray(token_embeddings, dtype=np.float32)[None]
        (logits,) = self._session.run(["logits"], {"token_embeddings": x})
        return _softmax(logits[0])

    def entities(
        self,
        text: str,
        token_embeddings: np.ndarray,
        offsets: Sequence[tuple[int, int]],
        min_score: float,
    ) -> list[PIIEntity]:
        if token_embeddings.ndim != 2 or token_embeddings.shape[0] != len(offsets):
            raise ValueError(
                f"token_embeddings {token_embeddings.shape} must be [T,dim] with T == len(offsets) == {len(offsets)}"
            )
        if len(offsets) == 0:
            return []
        return self.decode(text, self.probs(token_embeddings), offsets, min_score)

    def decode(self, text: str, probs: np.ndarray, offsets: Sequence[tuple[int, int]], min_score: float
               ) -> list[PIIEntity]:
        """The entities of `text` from label probabilities [T,K] (`probs` of the same text's tokens)."""
        return decode_bio(text, probs, offsets, self.labels, min_score) if len(offsets) else []
