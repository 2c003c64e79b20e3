"""The learned PERSON span check (signals/pii/person_model.py) and its place in the policy (`person_model`).

Hand-written texts only (no data set). The detector cases run the committed artifact behind the real encoder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from semrouter.signals.pii import PIIConfig, PIIDetector
from semrouter.signals.pii.names import NameGazetteer
from semrouter.signals.pii.person import person_counts
from semrouter.signals.pii.person_model import (
    FEATURE_VERSION,
    PERSON_MODEL_FILE,
    SCALARS,
    SCALARS_V3,
    PersonModel,
    TextStates,
    scalars_of,
    span_features,
)
from semrouter.signals.types import PIIEntity

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
ARTIFACTS = ROOT / "modelbuild" / "artifacts"
DIM = 384

needs_encoder = pytest.mark.skipif(
    not (MODELS / "encoder.int8.onnx").is_file() or not (MODELS / "tokenizer.json").is_file(),
    reason="models/encoder.int8.onnx missing: run `make models` first",
)


def test_committed_artifact_loads_with_the_feature_layout() -> None:
    data = json.loads((ARTIFACTS / PERSON_MODEL_FILE).read_text())
    version = data["feature_version"]
    assert version == FEATURE_VERSION and data["scalars"] == list(scalars_of(version))
    model = PersonModel.load(ARTIFACTS)
    assert model.version == version
    assert model.dim == (3 if version == 2 else 4) * DIM + len(scalars_of(version))
    assert 0.0 < model.threshold < 1.0
    # trained with the extra candidates of candidates.py: their threshold, floor and the head-only threshold
    assert model.extra_threshold is not None and model.threshold <= model.extra_threshold < 1.0
    assert 0.0 < model.candidate_floor < 0.5 and model.capitalised_runs is False
    assert 0.0 < model.threshold_without_candidates <= model.threshold
    assert (ARTIFACTS / PERSON_MODEL_FILE).stat().st_size < 5_000_000


def test_prob_is_the_logistic_of_the_standardised_features() -> None:
    rng = np.random.default_rng(3)
    mean, scale, coef = rng.normal(size=5), rng.uniform(0.5, 2.0, size=5), rng.normal(size=5)
    model = PersonModel(mean, scale, coef, 0.25, 0.5)
    x = rng.normal(size=5).astype(np.float32)
    z = float(((x - mean) / scale) @ coef + 0.25)
    assert model.prob(x) == pytest.approx(1 / (1 + math.exp(-z)), rel=1e-5)
    with pytest.raises(ValueError, match="shapes"):
        PersonModel(mean, scale[:4], coef, 0.0, 0.5)


def test_a_hidden_layer_is_read_on_the_standardised_features() -> None:
    rng = np.random.default_rng(5)
    mean, scale = rng.normal(size=6), rng.uniform(0.5, 2.0, size=6)
    w1, b1, coef = rng.normal(size=(6, 4)), rng.normal(size=4), rng.normal(size=4)
    model = PersonModel(mean, scale, coef, -0.3, 0.5, hidden_w=w1, hidden_b=b1, version=3)
    x = rng.normal(size=6).astype(np.float32)
    z = float(np.maximum(((x - mean) / scale) @ w1 + b1, 0.0) @ coef - 0.3)
    assert model.prob(x) == pytest.approx(1 / (1 + math.exp(-z)), rel=1e-4)
    skip = rng.normal(size=6)
    mixed = PersonModel(mean, scale, coef, -0.3, 0.5, hidden_w=w1, hidden_b=b1, version=3, skip=skip)
    zs = z + float(((x - mean) / scale) @ skip)
    assert mixed.prob(x) == pytest.approx(1 / (1 + math.exp(-zs)), rel=1e-4)
    with pytest.raises(ValueError, match="skip"):
        PersonModel(mean, scale, np.ones(6), 0.0, 0.5, skip=skip)  # a linear term needs a hidden layer beside it
    with pytest.raises(ValueError, match="hidden layer shapes"):
        PersonModel(mean, scale, coef, 0.0, 0.5, hidden_w=w1[:, :3], hidden_b=b1, version=3)
    with pytest.raises(ValueError, match="feature_version"):
        PersonModel(mean, scale, coef, 0.0, 0.5, hidden_w=w1, hidden_b=b1, version=7)


def test_version_3_reads_both_sides_apart_the_head_and_the_text_shape() -> None:
    text = "Ask Ada Quill, then Ada's brother"
    spans = [(0, 3), (4, 7), (8, 13), (13, 14), (15, 19), (20, 23), (23, 25), (26, 33)]
    offsets = [(0, 0), *spans, (0, 0)]
    tokens = np.arange(len(offsets), dtype=np.float32)[:, None] * np.ones((1, DIM), np.float32)
    labels = ("O", "B-PERSON", "I-PERSON", "B-STREET_ADDRESS", "I-STREET_ADDRESS")
    probs = np.zeros((len(offsets), len(labels)), np.float32)
    probs[:, 0] = 1.0
    probs[2] = probs[3] = (0.1, 0.6, 0.2, 0.1, 0.0)  # "Ada", "Quill"
    ts = TextStates.of(text, tokens, offsets, names_in_text=1, record=False, probs=probs, labels=labels)
    f = span_features(ts, 4, 13, 0.8, None, version=3)
    assert f.shape == (4 * DIM + len(SCALARS_V3),)
    assert f[0] == pytest.approx(2.5)  # the span: tokens 2 and 3
    assert f[DIM] == pytest.approx(1.0)  # left of it: "Ask" only
    assert f[2 * DIM] == pytest.approx((4 + 5 + 6 + 7 + 8) / 5)  # right of it: up to six tokens, [SEP] left out
    sc = dict(zip(SCALARS_V3, f[4 * DIM :], strict=True))
    assert sc["p_person_span"] == pytest.approx(0.8) and sc["p_o_span"] == pytest.approx(0.1)
    assert sc["p_other_span"] == pytest.approx(0.1) and sc["p_person_left"] == 0.0 and sc["p_o_right"] == 1.0
    assert sc["all_title"] == 1.0 and sc["any_caps"] == 0.0 and sc["left_cap"] == 1.0 and sc["right_cap"] == 0.0
    assert sc["comma_after"] == 1.0 and sc["recurs"] == 0.0 and sc["word_recurs"] == pytest.approx(1 / 3)
    assert sc["position"] == pytest.approx(4 / len(text)) and sc["span_tokens"] == pytest.approx(2 / 8)
    g = span_features(ts, 20, 23, 0.8, None, version=3)  # "Ada" before "'s"
    assert dict(zip(SCALARS_V3, g[4 * DIM :], strict=True))["possessive"] == 1.0
    with pytest.raises(ValueError, match="label probabilities"):
        span_features(TextStates.of(text, tokens, offsets, 1, False), 4, 13, 0.8, None, version=3)


def test_a_model_of_another_feature_version_is_refused(tmp_path: Path) -> None:
    data = json.loads((ARTIFACTS / PERSON_MODEL_FILE).read_text())
    (tmp_path / PERSON_MODEL_FILE).write_text(json.dumps({**data, "feature_version": FEATURE_VERSION + 1}))
    with pytest.raises(ValueError, match="feature_version"):
        PersonModel.load(tmp_path)


def test_span_features_average_the_span_its_neighbours_and_the_text() -> None:
    text = "Please ask Ada Quill about it"
    words = [(m, m + len(w)) for w, m in (("Please", 0), ("ask", 7), ("Ada", 11), ("Quill", 15), ("about", 21),
                                          ("it", 27))]
    offsets = [(0, 0), *words, (0, 0)]  # [CLS] words [SEP]
    tokens = np.arange(len(offsets), dtype=np.float32)[:, None] * np.ones((1, DIM), np.float32)
    ts = TextStates.of(text, tokens, offsets, names_in_text=1, record=False)
    f = span_features(ts, 11, 20, 0.9, NameGazetteer(frozenset({"ada"}), frozenset({"quill"})))
    assert f.shape == (3 * DIM + len(SCALARS),)
    assert f[0] == pytest.approx(3.5)  # tokens 3 and 4: "Ada", "Quill"
    assert f[DIM] == pytest.approx((1 + 2 + 5 + 6) / 4)  # neighbours, specials left out
    assert f[2 * DIM] == pytest.approx(3.5)  # the whole text without [CLS] / [SEP]
    scalars = dict(zip(SCALARS, f[3 * DIM :], strict=True))
    assert scalars["head_score"] == pytest.approx(0.9)
    assert scalars["cue"] == 1.0  # "ask" before the name
    assert scalars["full_name"] == scalars["first_listed"] == scalars["last_listed"] == 1.0
    assert scalars["sentence_start"] == 0.0 and scalars["record"] == 0.0


def _entities(text: str, *values: str) -> list[PIIEntity]:
    return [PIIEntity("PERSON", text.index(v), text.index(v) + len(v), v, 0.9) for v in values]


def test_policy_takes_the_span_check_as_evidence_only_in_a_trusted_language() -> None:
    text = "Odile Brassac told me the meeting moved."
    found = _entities(text, "Odile Brassac")

    def kept(language: str, accept: bool) -> list[str]:
        return [e.value for e in person_counts(text, found, language, True, ("en",), None, lambda e: accept)]

    assert kept("en", True) == ["Odile Brassac"]
    assert kept("en", False) == []
    assert kept("fr", True) == []  # outside head_languages a cue word is still needed
    cue = "My colleague Odile Brassac told me the meeting moved."
    assert [e.value for e in person_counts(cue, _entities(cue, "Odile Brassac"), "en", True, ("en",), None,
                                           lambda e: False)] == ["Odile Brassac"]  # a cue word still counts


def test_config_keys_are_validated() -> None:
    assert PIIConfig().person_model is True and PIIConfig().person_model_threshold is None
    with pytest.raises(ValidationError, match="person_model_threshold"):
        PIIConfig(person_model_threshold=1.5)
    assert PIIConfig().person_candidates is True and PIIConfig().person_candidate_floor is None
    with pytest.raises(ValidationError, match="person_candidate_floor"):
        PIIConfig(person_candidate_floor=0.0)


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    for name in ("pii_head.onnx", "pii_head.labels.json", "pii_names.json"):
        (tmp_path / name).write_bytes((ARTIFACTS / name).read_bytes())
    with pytest.raises(FileNotFoundError, match=PERSON_MODEL_FILE):
        PIIDetector.load(tmp_path, PIIConfig())
    assert PIIDetector.load(tmp_path, PIIConfig(person_model=False)).person_model is None


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    from semrouter.signals.pii.encode import TokenEmbedder

    return TokenEmbedder.load(MODELS, int8=True, threads=1)


def _persons(detector: PIIDetector, embedder, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    emb, offsets = embedder.embed(text)
    return [e.value for e in detector.detect(text, emb, offsets, "en") if e.type == "PERSON"]


@needs_encoder
@pytest.mark.parametrize("text", [
    "Write a story where a shy baker named Tilda Marchbanks enters a cake contest.",
    "Write a bedtime story about a dragon called Fennick Oakbristle who is afraid of sheep.",
    "In Moby-Dick, what drives Captain Ahab?",
    "Who is Hermione Granger's best friend in the Harry Potter books?",
    "Grant the deploy role to the release group, then Mark the ticket done.",
    "Bill the Jenkins account for March and April together.",
    "Summarise the ending of Jane Eyre in two sentences.",
])
def test_story_characters_and_fiction_do_not_count(embedder, text: str) -> None:  # type: ignore[no-untyped-def]
    assert _persons(PIIDetector.load(ARTIFACTS, PIIConfig()), embedder, text) == []


@needs_encoder
def test_the_span_check_finds_a_private_person_without_a_cue_word(embedder) -> None:  # type: ignore[no-untyped-def]
    text = "Is it weird that Dmitri Sokolov still texts my mum every week?"
    assert _persons(PIIDetector.load(ARTIFACTS, PIIConfig()), embedder, text) == ["Dmitri Sokolov"]
    # without the check (and without the census rule) the name has no evidence
    off = PIIDetector.load(ARTIFACTS, PIIConfig(person_model=False, person_full_names=False))
    assert _persons(off, embedder, text) == []
    # the operator's threshold replaces the validated one
    strict = PIIDetector.load(ARTIFACTS, PIIConfig(person_model_threshold=1.0))
    assert _persons(strict, embedder, text) == []


@needs_encoder
@pytest.mark.parametrize(("text", "name"), [
    ("Mention that Philippa Greenhalgh will cover the late shift.", "Philippa Greenhalgh"),
    ("Ask whether Ottokar Brenninkmeijer paid for the broken window.", "Ottokar Brenninkmeijer"),
])
def test_private_people_in_running_text_count_without_a_cue(embedder, text: str, name: str) -> None:  # type: ignore[no-untyped-def]
    # both under the tenth session's threshold; the eleventh session's check (feature version 3, hidden layer) takes them
    assert _persons(PIIDetector.load(ARTIFACTS, PIIConfig()), embedder, text) == [name]
    assert _persons(PIIDetector.load(ARTIFACTS, PIIConfig(person_model_threshold=1.0)), embedder, text) == []


@needs_encoder
def test_an_extra_candidate_the_head_left_out_counts_by_the_span_check(embedder) -> None:  # type: ignore[no-untyped-def]
    # the head's argmax leaves this name out; it is proposed as an extra candidate and the check takes it
    # (the tenth session's case, "Tell me why Griselda left the band.", the eleventh session's check scores 0.16)
    text = "I think Evander Mulcahy lied about the receipt."
    assert _persons(PIIDetector.load(ARTIFACTS, PIIConfig()), embedder, text) == ["Evander Mulcahy"]
    assert _persons(PIIDetector.load(ARTIFACTS, PIIConfig(person_candidates=False)), embedder, text) == []
