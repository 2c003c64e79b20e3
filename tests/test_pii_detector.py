"""PIIDetector end to end: ONNX encoder token embeddings + the committed PII head + patterns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semrouter.signals.pii import PIIConfig, PIIDetector
from semrouter.signals.pii.head import decode_bio

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
ARTIFACTS = ROOT / "modelbuild" / "artifacts"

needs_encoder = pytest.mark.skipif(
    not (MODELS / "encoder.int8.onnx").is_file() or not (MODELS / "tokenizer.json").is_file(),
    reason="models/encoder.int8.onnx missing: run `make models` first",
)


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    from semrouter.signals.pii.encode import TokenEmbedder

    return TokenEmbedder.load(MODELS, int8=True, threads=1)


@pytest.fixture(scope="module")
def detector() -> PIIDetector:
    return PIIDetector.load(ARTIFACTS, PIIConfig())


def run(detector: PIIDetector, embedder, text: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    emb, offsets = embedder.embed(text)
    out = detector.detect(text, emb, offsets)
    for e in out:
        assert text[e.start : e.end] == e.value
    return [(e.type, e.value) for e in out]


@needs_encoder
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Please draft an email to John Smith at 42 Elm Street about the invoice.",
            [("PERSON", "John Smith"), ("STREET_ADDRESS", "42 Elm Street")],
        ),
        ("my neighbour Maria Garcia said the parcel is gone", [("PERSON", "Maria Garcia")]),
        ("Can you write a thank-you note to Priya Sharma for the dinner?", [("PERSON", "Priya Sharma")]),
        (
            "Ship the box to 1600 Pennsylvania Avenue and put Wei Zhang as the recipient.",
            [("STREET_ADDRESS", "1600 Pennsylvania Avenue"), ("PERSON", "Wei Zhang")],
        ),
        (
            "Tell Hans Müller that his invoice for Hauptstraße 12 is attached.",
            [("PERSON", "Hans Müller"), ("STREET_ADDRESS", "Hauptstraße 12")],
        ),
    ],
)
def test_person_and_address_found(detector: PIIDetector, embedder, text: str, expected) -> None:  # type: ignore[no-untyped-def]
    assert run(detector, embedder, text) == expected


@needs_encoder
@pytest.mark.parametrize(
    "text",
    [
        "Compare Python and Rust for a startup in Berlin.",
        "Why does Excel crash every Monday at Microsoft?",
        "List five things to do in Paris in May.",
        "Is Kubernetes or Docker Swarm better for Google Cloud?",
    ],
)
def test_capitalised_non_names_not_tagged(detector: PIIDetector, embedder, text: str) -> None:  # type: ignore[no-untyped-def]
    assert run(detector, embedder, text) == []


@needs_encoder
def test_structured_and_learned_together(detector: PIIDetector, embedder) -> None:  # type: ignore[no-untyped-def]
    text = "Contact card: Anna Kowalski, anna.k@mailbox.org, +1 (212) 555-0147, born on 4 July 1988."
    got = run(detector, embedder, text)
    assert ("PERSON", "Anna Kowalski") in got
    assert ("EMAIL_ADDRESS", "anna.k@mailbox.org") in got
    assert ("PHONE_NUMBER", "+1 (212) 555-0147") in got
    assert ("DATE_OF_BIRTH", "4 July 1988") in got


@needs_encoder
def test_types_and_enabled_respected(embedder) -> None:  # type: ignore[no-untyped-def]
    text = "Email John Smith at john@mailbox.org"
    emb, offsets = embedder.embed(text)
    only_email = PIIDetector.load(ARTIFACTS, PIIConfig(types=("EMAIL_ADDRESS",)))
    assert only_email.head is None  # the head is not even loaded
    assert [e.type for e in only_email.detect(text, emb, offsets)] == ["EMAIL_ADDRESS"]
    off = PIIDetector.load(ARTIFACTS, PIIConfig(enabled=False))
    assert off.detect(text, emb, offsets) == []


def test_patterns_only_without_embeddings(detector: PIIDetector) -> None:
    got = detector.detect("I am John Smith, mail john@mailbox.org", None, None)
    assert [(e.type, e.value) for e in got] == [("EMAIL_ADDRESS", "john@mailbox.org")]


def test_missing_head_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="pii_head"):
        PIIDetector.load(tmp_path, PIIConfig())
    assert PIIDetector.load(tmp_path, PIIConfig(types=("US_SSN",))).detect("SSN 123-45-6789", None, None)


def test_shape_mismatch_rejected(detector: PIIDetector) -> None:
    with pytest.raises(ValueError, match="len\\(offsets\\)"):
        detector.detect("John Smith", np.zeros((3, 384), np.float32), [(0, 0), (0, 4)])


def test_decode_merges_word_pieces_and_trims_punctuation() -> None:
    labels = ["O", "B-PERSON", "I-PERSON", "B-STREET_ADDRESS", "I-STREET_ADDRESS"]
    text = "ask Okonkwo, then 12 Elm St. now"
    # tokens: [CLS] ask oko ##nk ##wo , then 12 elm st . now [SEP]
    offsets = [(0, 0), (0, 3), (4, 7), (7, 9), (9, 11), (11, 12), (13, 17), (18, 20), (21, 24), (25, 27), (27, 28), (29, 32), (0, 0)]
    tags = ["O", "O", "B-PERSON", "I-PERSON", "B-PERSON", "O", "O", "B-STREET_ADDRESS", "I-STREET_ADDRESS",
            "I-STREET_ADDRESS", "I-STREET_ADDRESS", "O", "O"]
    probs = np.full((len(tags), len(labels)), 0.01, np.float32)
    for t, tag in enumerate(tags):
        probs[t, labels.index(tag)] = 0.96
    got = [(e.type, e.value) for e in decode_bio(text, probs, offsets, labels, 0.5)]
    assert got == [("PERSON", "Okonkwo"), ("STREET_ADDRESS", "12 Elm St.")]
    assert decode_bio(text, probs, offsets, labels, 0.99) == []  # below min_score
