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
def test_full_name_without_a_cue_counts(embedder) -> None:  # type: ignore[no-untyped-def]
    # signals.pii.person_full_names (the policy without the learned span check): a census first name + surname is
    # the evidence, no "my colleague" needed
    text = "Can you check whether Dana Whitfield got the contract renewal I sent last week?"
    census = PIIDetector.load(ARTIFACTS, PIIConfig(person_model=False))
    assert run(census, embedder, text) == [("PERSON", "Dana Whitfield")]
    off = PIIDetector.load(ARTIFACTS, PIIConfig(person_full_names=False, person_model=False))
    assert run(off, embedder, text) == []


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
    assert PIIDetector.load(tmp_path, PIIConfig(types=("US_SSN",))).detect("SSN 536-22-1847", None, None)


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


@needs_encoder
@pytest.mark.parametrize(
    "text",
    [
        # capitalised imperatives opening a sentence
        "Listen on a specific address and port.",
        "Remove specific files interactively. Mix two audio streams together.",
        "Summarize this article in three bullet points.",
        "Lint using the specified configuration file.",
        # titles of fictional works and personas
        "What is the main theme of the novel Frankenstein?",
        "Write an essay on 'Harry Potter and the Goblet of Fire' for my class.",
        "You are Galadriel, the wise elf; greet the travellers.",
        "Role-play as Sherlock Holmes and solve this riddle.",
        "We read Percy Jackson and the Lightning Thief in class.",
        # shell and code lines
        "find . -name '*.x' -print0 | xargs -0 grep fred",
        "cat /etc/passwd | sed 's/:.*//' | sort -u",
        # maths with a number and a word (not a street address)
        "Find the area of a circle with radius 5.",
        "A cask holds 49 litres of wine and water; how much water must be added?",
        # coordinates with hemisphere letters (the head read "51.5007 N, 0.1246" as an address)
        "The waypoint is at 51.5007 N, 0.1246 W, near the weir.",
        "The buoy sits at 40.6892 N, 74.0445 W.",
        # census first names that are ordinary words, at the start of a sentence
        "Grant Read access to the auditors group. Mark Done every stale ticket.",
    ],
)
def test_learned_lookalikes_not_tagged(  # type: ignore[no-untyped-def]
    detector: PIIDetector, embedder, text: str
) -> None:
    assert [t for t in run(detector, embedder, text) if t[0] in ("PERSON", "STREET_ADDRESS")] == []


def test_span_rules_without_the_model() -> None:
    from semrouter.signals.pii.context import TextContext
    from semrouter.signals.pii.spans import address_ok, leading_imperative, name_words_ok, persona_or_fiction

    assert name_words_ok("Jean-Luc O'Neil") and name_words_ok("J. R. Smith") and name_words_ok("maria garcia")
    assert not name_words_ok("-s") and not name_words_ok("/etc/passwd") and not name_words_ok("*.x")
    assert not name_words_ok("לי")  # an uncased script: the head was not trained on it
    text = "Tell Hans Müller the news."
    assert text[leading_imperative(text, 0, 16) : 16] == "Hans Müller"
    assert leading_imperative("I met Tell Ana", 6, 14) == 6  # mid-sentence: left alone
    assert persona_or_fiction("You are Galadriel of the woods", 8, 17)
    assert not persona_or_fiction("Please email Anna about it", 13, 17)
    ok = "Ship it to 12 Baker Street and 49 litres of water"
    tc = TextContext(ok)
    assert address_ok(tc, 11, 26) and not address_ok(tc, 31, 40)
    tc = TextContext("find / -perm 777")
    assert not address_ok(tc, 7, 16)
