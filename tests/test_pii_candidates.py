"""Extra PERSON candidates for the span check (signals/pii/candidates.py), on hand-built head probabilities.

Hand-written texts only (no data set). One token per word; `probs` gives each word's PERSON probability.
"""

from __future__ import annotations

import re

import numpy as np

from semrouter.signals.pii import PIIConfig, PIIDetector
from semrouter.signals.pii.candidates import MAX_WORDS, person_candidates
from semrouter.signals.pii.names import NameGazetteer
from semrouter.signals.pii.person_model import SCALARS, PersonModel
from semrouter.signals.types import PIIEntity

LABELS = ("O", "B-PERSON", "I-PERSON", "B-STREET_ADDRESS", "I-STREET_ADDRESS")


def _head(text: str, person: dict[str, float] | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """[CLS] one token per word [SEP]; a word's P(B-PERSON) from `person` (0 when absent), the rest O."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    offsets = [(0, 0), *words, (0, 0)]
    probs = np.zeros((len(offsets), len(LABELS)), dtype=np.float32)
    probs[:, 0] = 1.0
    for k, (s, e) in enumerate(words, start=1):
        p = (person or {}).get(text[s:e].strip(".,?!"), 0.0)
        probs[k, 1], probs[k, 0] = p, 1.0 - p
    return probs, offsets


def _values(text: str, person: dict[str, float] | None = None, floor: float = 0.1,
            taken: list[PIIEntity] | None = None, capitalised: bool = True) -> list[str]:
    probs, offsets = _head(text, person)
    return [e.value for e in person_candidates(text, probs, offsets, LABELS, floor, taken or [], capitalised)]


def test_a_name_below_the_argmax_but_above_the_floor_is_proposed() -> None:
    text = "why does nobody reply to odile about the rota?"  # uncased: only the head's probability proposes
    assert _values(text, {"odile": 0.3}) == ["odile"]
    assert _values(text, {"odile": 0.3}, floor=0.5) == []


def test_capitalised_runs_are_proposed_with_their_mean_person_probability() -> None:
    text = "The quote that Odile Brassac sent looks high."
    probs, offsets = _head(text, {"Odile": 0.04, "Brassac": 0.02})
    (cand,) = person_candidates(text, probs, offsets, LABELS, 0.1, [])
    assert cand.value == "Odile Brassac" and cand.score == 0.03
    assert _values(text, {"Odile": 0.04}, capitalised=False) == []


def test_a_lone_sentence_opening_word_needs_the_floor() -> None:
    assert _values("Carol singing starts at seven.") == []
    assert _values("Carol said the van is booked.", {"Carol": 0.2}) == ["Carol"]


def test_spans_already_found_are_not_proposed_again() -> None:
    text = "I think Odile Brassac and Pim Verhoef both signed."
    found = [PIIEntity("PERSON", 8, 21, "Odile Brassac", 0.9)]
    assert _values(text, taken=found) == ["Pim Verhoef"]


def test_lower_case_words_in_a_cased_text_are_not_names() -> None:
    assert _values("The printer on floor two jams.", {"printer": 0.6, "floor": 0.4}) == []


def test_a_leading_imperative_and_edge_punctuation_are_dropped() -> None:
    assert _values("Tell Odile the van is booked.") == ["Odile"]
    assert _values("Did you ask (Odile Brassac) already?") == ["Odile Brassac"]


def test_personas_titles_and_long_runs_are_not_proposed() -> None:
    assert _values("You are Galadriel, answer as her.") == []
    assert _values("Summarise the novel Anne Shirley Goes West for me.") == []
    title = " ".join(["Quick"] * (MAX_WORDS + 1))
    assert _values(f"we read {title} yesterday.") == []


def test_no_offsets_or_floor_over_one_proposes_nothing() -> None:
    text = "Odile Brassac called."
    probs, offsets = _head(text)
    assert person_candidates(text, probs[:0], [], LABELS, 0.1, []) == []
    assert person_candidates(text, probs, offsets, LABELS, 1.01, []) == []


class _Head:
    """Stands in for PIIHead: `probs` are the hand-built label probabilities whatever the token states."""

    labels = LABELS

    def __init__(self, probs: np.ndarray) -> None:
        self._probs = probs

    def probs(self, token_embeddings: np.ndarray) -> np.ndarray:
        return self._probs

    def decode(self, text: str, probs: np.ndarray, offsets: list[tuple[int, int]], min_score: float) -> list[PIIEntity]:
        from semrouter.signals.pii.head import decode_bio

        return decode_bio(text, probs, offsets, self.labels, min_score)


def _detector(bias: float, extra_threshold: float | None = 0.5, **cfg: object) -> PIIDetector:
    """A detector whose span check scores every span sigmoid(bias) (zero weights)."""
    dim = 3 * 384 + len(SCALARS)
    model = PersonModel(np.zeros(dim), np.ones(dim), np.zeros(dim), bias, 0.5, extra_threshold)
    model.candidate_floor, model.capitalised_runs = 0.1, False
    text = "The quote that Odile sent looks high."
    probs, _ = _head(text, {"Odile": 0.3})
    head = _Head(probs)
    return PIIDetector(PIIConfig(**cfg), head, NameGazetteer(frozenset(), frozenset()), model)  # type: ignore[arg-type]


def _persons(det: PIIDetector, language: str = "en") -> list[str]:
    text = "The quote that Odile sent looks high."
    _, offsets = _head(text)
    emb = np.zeros((len(offsets), 384), dtype=np.float32)
    return [e.value for e in det.detect(text, emb, offsets, language) if e.type == "PERSON"]


def test_the_detector_counts_an_extra_candidate_only_when_the_span_check_accepts_it() -> None:
    assert _persons(_detector(bias=3.0)) == ["Odile"]  # P = 0.95 >= 0.5: the head's argmax said O
    assert _persons(_detector(bias=-3.0)) == []  # P = 0.05
    assert _persons(_detector(bias=3.0, person_candidates=False)) == []
    assert _persons(_detector(bias=3.0, extra_threshold=None)) == []  # a model not trained on extra candidates
    assert _persons(_detector(bias=3.0), language="fr") == []  # outside head_languages: no extra candidates
    assert _persons(_detector(bias=3.0, person_model_threshold=0.97)) == []  # the override moves both thresholds
    assert _persons(_detector(bias=3.0, person_candidate_floor=0.5)) == []  # the floor from the config wins


def test_double_barrelled_and_apostrophe_names_are_capitalised_words() -> None:
    text = "i found out Kwabena Asante-Mensah and Siobhan O'Leary applied too."
    assert _values(text, {"Kwabena": 0.3, "Asante-Mensah": 0.3}, capitalised=False) == ["Kwabena Asante-Mensah"]
    assert _values("we met NASA people and Siobhan O'Leary there.") == ["Siobhan O'Leary"]
