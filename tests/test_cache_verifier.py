"""The learned cache-hit verifier: the committed ONNX model, its use in lookup, the fallback to rules."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semrouter.cache import CacheConfig, SemanticCache
from semrouter.cache.align import ALIGN_FEATURES
from semrouter.cache.learned_verify import LEX_FEATURES, LearnedVerifier, VerifierModelError, lex_matrix
from semrouter.cache.testing import HashEmbedder, completion, put_answer, user_request
from semrouter.cache.verify import Verifier

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "modelbuild" / "artifacts" / "cache_verifier.onnx"
ALIGNED = ROOT / "models" / "cache_verifier_align.onnx"  # opt-in model, installed by `make models` beside the encoder
ENCODER = ROOT / "models" / "encoder.int8.onnx"
TOKENIZER = ROOT / "models" / "tokenizer.json"
H = {"x-user-id": "alice"}

PARAPHRASE = ("How do I bake sourdough bread at home?", "What is the way to make sourdough bread at home?")
NEAR_MISS = ("How many days are in 3 weeks?", "How many days are in 7 weeks?")


req = user_request


@pytest.fixture(scope="module")
def learned() -> LearnedVerifier:
    return LearnedVerifier(MODEL, Verifier.from_tokenizer(TOKENIZER))


@pytest.fixture(scope="module")
def aligned() -> LearnedVerifier:
    """The opt-in model with token-alignment features (reads the encoder in models/)."""
    if not ALIGNED.is_file() or not ENCODER.is_file():
        pytest.skip("models/ not built (make models)")
    return LearnedVerifier(ALIGNED, Verifier.from_tokenizer(TOKENIZER))


@pytest.fixture(scope="module")
def encode() -> Any:
    if not ENCODER.is_file() or not TOKENIZER.is_file():
        pytest.skip("models/ not built (make models)")
    from modelbuild.cache_verifier.embed import Encoder

    enc = Encoder(ENCODER, TOKENIZER, threads=1)
    return lambda texts: enc(list(texts))


def test_artifact_is_small_and_sidecar_lists_features() -> None:
    assert MODEL.stat().st_size <= 5_000_000
    sidecar = json.loads(MODEL.with_name("cache_verifier.labels.json").read_text())
    assert tuple(sidecar["lex_features"]) == LEX_FEATURES
    assert sidecar["labels"][1] == "same_answer"


def test_outputs_are_probabilities(learned: LearnedVerifier) -> None:
    rng = np.random.default_rng(0)
    u = rng.normal(size=(7, 384)).astype(np.float32)
    v = rng.normal(size=(7, 384)).astype(np.float32)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    lex = rng.uniform(size=(7, len(LEX_FEATURES))).astype(np.float32)
    p = learned.score_arrays(u, v, lex)
    assert p.shape == (7,) and np.all((p >= 0) & (p <= 1))
    (probs,) = learned._sess.run(["probs"], {"u": u, "v": v, "lex": lex})
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert learned.score("q", u[0], [], np.zeros((0, 384), np.float32)).shape == (0,)


def test_lexical_features_are_in_range_and_symmetric() -> None:
    rules = Verifier()
    x = lex_matrix(rules, NEAR_MISS[0], [NEAR_MISS[1], NEAR_MISS[0]])
    assert x.shape == (2, len(LEX_FEATURES)) and np.all((x >= 0) & (x <= 1))
    assert x[0, LEX_FEATURES.index("numbers_differ")] == 1.0 and x[1, LEX_FEATURES.index("jaccard")] == 1.0
    assert np.array_equal(lex_matrix(rules, NEAR_MISS[1], [NEAR_MISS[0]])[0], x[0])


def test_paraphrase_scores_higher_than_number_near_miss(learned: LearnedVerifier, encode: Any) -> None:
    e = encode([*PARAPHRASE, *NEAR_MISS])
    para = learned.score(PARAPHRASE[1], e[1], [PARAPHRASE[0]], e[:1])[0]
    miss = learned.score(NEAR_MISS[1], e[3], [NEAR_MISS[0]], e[2:3])[0]
    assert para > miss
    assert miss < CacheConfig(verifier="learned").verifier_threshold


SCOPED = ("What are the main renewable energy sources?", "What are the main renewable energy sources in Europe?")
REWORDED = ("How tall is the highest mountain in Africa?", "How tall is the tallest mountain in Africa?")


ALIGNED_THRESHOLD = 0.92  # chosen on validation with the opt-in model (its sidecar)


def test_aligned_model_reads_token_alignment(aligned: LearnedVerifier) -> None:
    sidecar = json.loads(ALIGNED.with_name("cache_verifier_align.labels.json").read_text())
    assert aligned.wants_align and tuple(sidecar["align_features"]) == ALIGN_FEATURES
    assert sidecar["chosen_on_validation"]["verifier_threshold"] == ALIGNED_THRESHOLD
    assert not LearnedVerifier(MODEL, Verifier()).wants_align
    rng = np.random.default_rng(0)
    u = rng.normal(size=(3, 384)).astype(np.float32)
    lex = rng.uniform(size=(3, len(LEX_FEATURES))).astype(np.float32)
    align = rng.uniform(size=(3, len(ALIGN_FEATURES))).astype(np.float32)
    assert aligned.score_arrays(u, u, lex, align).shape == (3,)
    with pytest.raises(ValueError):
        aligned.score_arrays(u, u, lex)  # this model needs the alignment features


def test_added_scope_word_scores_low_and_a_reworded_question_high(aligned: LearnedVerifier, learned: LearnedVerifier,
                                                                  encode: Any) -> None:
    """With sentence vectors alone (the default model) an added word of scope and a synonym look alike: it scores
    the scoped pair ~0.43 and the reworded one ~0.89, both under its 0.94. Token alignment tells them apart."""
    e = encode([*SCOPED, *REWORDED])
    scoped = aligned.score(SCOPED[1], e[1], [SCOPED[0]], e[:1])[0]
    reworded = aligned.score(REWORDED[1], e[3], [REWORDED[0]], e[2:3])[0]
    assert scoped < 0.5 * ALIGNED_THRESHOLD < ALIGNED_THRESHOLD <= reworded
    assert learned.score(REWORDED[1], e[3], [REWORDED[0]], e[2:3])[0] < CacheConfig(verifier="learned").verifier_threshold


async def test_alignment_costs_an_encoder_run_only_when_the_score_decides(encode: Any,
                                                                         aligned: LearnedVerifier) -> None:
    async def embed(texts: Sequence[str]) -> np.ndarray:
        return encode(texts)

    cfg = CacheConfig.model_validate({"enabled": True, "backend": "memory", "lookup_timeout_ms": 5000,
                                      "verifier": "learned",
                                      "verifier_model": str(ALIGNED), "verify_vocabulary": str(TOKENIZER),
                                      "verifier_threshold": ALIGNED_THRESHOLD})
    cache = await SemanticCache.create(cfg, embed, maintenance=False)
    learned = cache._learned
    assert learned is not None and learned.wants_align
    for text in (REWORDED[0], SCOPED[0]):
        await _put(cache, text)
    runs = learned.encoder_runs
    assert await _get(cache, "Hi! How tall is the highest mountain in Africa? Thanks") is not None  # a rewording rule
    assert learned.encoder_runs == runs
    assert await _get(cache, REWORDED[1]) is not None  # decided by the learned score: one encoder run
    assert learned.encoder_runs == runs + 1
    key = cache.key_for(req(SCOPED[1]), H)
    assert key is not None
    hit, reason = await cache.lookup_with_reason(key, None)
    assert hit is None and reason == "learned"
    await cache.close()


def test_missing_model_is_an_error() -> None:
    with pytest.raises(VerifierModelError):
        LearnedVerifier(ROOT / "no-such-verifier.onnx", Verifier())


class FixedScores(LearnedVerifier):
    """Scores by substring, so lookup behaviour does not depend on the trained weights."""

    def __init__(self, good: str) -> None:
        self.dimension = 384
        self.rules = Verifier()
        self.good = good
        self.calls: list[tuple[str, int]] = []

    def score(self, query: str, query_vec: np.ndarray, cached: Sequence[str], cached_vecs: np.ndarray) -> np.ndarray:
        assert cached_vecs.shape == (len(cached), 384)
        self.calls.append((query, len(cached)))
        return np.array([0.99 if self.good in query else 0.01] * len(cached), dtype=np.float32)


async def _cache(learned: LearnedVerifier | None = None, **over: Any) -> SemanticCache:
    cfg = CacheConfig.model_validate({"enabled": True, "backend": "memory", "dimension": 384, "verifier": "learned",
                                      "similarity_threshold": 0.5, "lookup_timeout_ms": 5000, **over})
    return await SemanticCache.create(cfg, HashEmbedder(384), maintenance=False, learned=learned)



async def _put(cache: SemanticCache, text: str) -> None:
    await put_answer(cache, text, H)


async def _get(cache: SemanticCache, text: str):  # type: ignore[no-untyped-def]
    key = cache.key_for(req(text), H)
    assert key is not None
    return await cache.lookup(key, None)


async def test_lookup_uses_the_learned_score() -> None:
    fixed = FixedScores(good="home")
    cache = await _cache(fixed)
    await _put(cache, "How do I bake sourdough bread?")
    assert await _get(cache, "how do i bake sourdough bread at home") is not None
    assert await _get(cache, "how do i bake sourdough bread quickly") is None
    stats = await cache.stats()
    assert stats["counters"]["rejected_learned"] == 1 and stats["counters"]["hits_semantic"] == 1
    assert stats["verifier"] == "learned" and len(fixed.calls) == 2
    assert "verifier_reembedded" not in stats["counters"]  # the stored vector was remembered
    await cache.close()


async def test_learned_plus_rules_and_vectors_of_unknown_entries() -> None:
    fixed = FixedScores(good="quickly")
    cache = await _cache(fixed, verifier="both")
    await _put(cache, "foods that raise blood pressure quickly")
    cache._vectors.clear()  # as if stored by another replica: the backend returns the stored vector
    assert await _get(cache, "foods that lower blood pressure quickly") is None  # learned ok, rules veto
    stats = await cache.stats()
    assert stats["counters"]["rejected_verify"] == 1
    assert "verifier_reembedded" not in stats["counters"]
    await cache.close()


async def test_entries_without_stored_vectors_are_embedded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = FixedScores(good="quickly")
    cache = await _cache(fixed, verifier="both")
    await _put(cache, "foods that raise blood pressure quickly")
    cache._vectors.clear()

    async def no_vectors(ids):  # a backend that cannot return vectors
        return {}

    monkeypatch.setattr(cache.backend, "vectors", no_vectors)
    assert await _get(cache, "foods that lower blood pressure quickly") is None
    assert (await cache.stats())["counters"]["verifier_reembedded"] == 1
    await cache.close()


async def test_real_model_in_lookup(encode: Any) -> None:
    async def embed(texts: Sequence[str]) -> np.ndarray:
        return encode(texts)

    cfg = CacheConfig.model_validate({"enabled": True, "backend": "memory", "lookup_timeout_ms": 5000,
                                      "verifier": "learned",
                                      "verifier_model": str(MODEL), "verify_vocabulary": str(TOKENIZER)})
    cache = await SemanticCache.create(cfg, embed, maintenance=False)
    key = cache.key_for(req(NEAR_MISS[0]), H)
    assert key is not None
    cache.store_in_background(key, None, 200, "application/json", completion("21"), has_pii=False)
    await cache.flush()
    assert await _get(cache, NEAR_MISS[1]) is None
    assert (await cache.stats())["verifier"] == "learned"
    await cache.close()


async def test_missing_model_falls_back_to_rules_with_raised_threshold() -> None:
    cache = await _cache(verifier_model="/nonexistent/cache_verifier.onnx", fallback_similarity_threshold=0.7)
    assert (await cache.stats())["verifier"].startswith("rules")
    await _put(cache, "foods that raise blood pressure quickly")
    assert await _get(cache, "foods that lower blood pressure quickly") is None
    assert (await cache.stats())["counters"]["rejected_verify"] == 1
    await _put(cache, "How do I bake sourdough bread at home?")
    assert await _get(cache, "how can you bake sourdough bread at home") is not None  # cos 1.0 with hash vectors
    await cache.close()


def test_config_legacy_verify_key() -> None:
    assert CacheConfig().verifier == "cross"
    assert CacheConfig.model_validate({"verify": False}).verifier == "off"
    assert CacheConfig.model_validate({"verify": True}).verifier == "cross"  # the default
    assert not CacheConfig.model_validate({"verifier": "off"}).verify
    with pytest.raises(ValueError):
        CacheConfig.model_validate({"verifier": "maybe"})


def test_rule_families_can_be_selected() -> None:
    rules = Verifier()
    assert not rules.check("Convert 5 miles to km", "Convert 8 miles to km").ok
    assert rules.check("Convert 5 miles to km", "Convert 8 miles to km", ("antonym", "units")).ok
    assert not rules.check("Convert 5 miles to km", "Convert 5 km to miles", ("antonym", "units")).ok
    assert rules.check("foods that raise blood pressure", "foods that lower blood pressure", ()).ok


class MiddleScores(FixedScores):
    """Every candidate scores 0.92: under the English threshold, over the other-languages one."""

    def score(self, query: str, query_vec: np.ndarray, cached: Sequence[str], cached_vecs: np.ndarray) -> np.ndarray:
        return np.full(len(cached), 0.92, dtype=np.float32)


async def test_other_languages_use_their_own_verifier_threshold() -> None:
    cfg = CacheConfig(verifier="learned")
    assert cfg.verifier_threshold_for("de") == cfg.verifier_threshold_other_languages < cfg.verifier_threshold
    assert cfg.verifier_threshold_for("en") == cfg.verifier_threshold_for("und") == cfg.verifier_threshold_for(None)
    cache = await _cache(MiddleScores(good=""), verifier_threshold=0.94, verifier_threshold_other_languages=0.9)
    await _put(cache, "Wie backe ich ein Sauerteigbrot?")
    key = cache.key_for(req("wie backe ich ein sauerteigbrot zu hause"), H)
    assert key is not None
    assert (await cache.lookup_with_reason(key, None, language=None))[1] == "learned"
    assert (await cache.lookup_with_reason(key, None, language="en"))[1] == "learned"
    hit, reason = await cache.lookup_with_reason(key, None, language="de")
    assert hit is not None and reason == ""
    await cache.close()


@pytest.mark.parametrize("a,b", [
    ("Warum ist der Himmel blau?", "Warum ist der Himmel nicht blau?"),
    ("Le café est-il bon pour la santé ?", "Le café n'est pas bon pour la santé ?"),
    ("Почему небо голубое?", "Почему небо не голубое?"),
    ("Is het water koud?", "Is het water niet koud?"),
])
def test_negation_in_other_languages_is_vetoed(a: str, b: str) -> None:
    assert Verifier().check(b, a, ("negation",)).reason == "negation"
    assert Verifier().check("Warum ist der Himmel blau?", "Wieso ist der Himmel blau?", ("negation",)).ok


def test_one_unit_put_in_place_of_another_is_vetoed() -> None:
    v = Verifier()
    assert v.check("How many hours are in a week?", "How many minutes are in a week?", ("units",)).reason == "units"
    assert v.check("Is 5 GB enough for a phone backup?", "Is 5 MB enough for a phone backup?", ("units",)).reason \
        == "units"
    assert v.check("How many minutes are in a week?", "how many minutes are there in one week", ("units",)).ok


def test_a_unit_changed_where_the_same_unit_stays_elsewhere_is_vetoed() -> None:
    v = Verifier()
    cached = "A box of 20 kg sits on a shelf beside a box of 5 kg; which one tips the shelf?"
    assert v.check(cached.replace("20 kg", "20 pounds"), cached, ("units",)).reason == "units"  # kg stays once
    assert v.check(cached.replace("sits on", "rests on"), cached, ("units",)).ok


@pytest.mark.parametrize("a,b", [
    ("Why does the dog chase the cat?", "Why does the cat chase the dog?"),
    ("Move the logs from the archive folder into tmp", "Move the logs from tmp into the archive folder"),
    ("Does a brick of gold weigh more than a bag of sand?", "Does a bag of sand weigh more than a brick of gold?"),
    ("My teacher is referred to as a mentor", "My teacher is as to referred a mentor"),
    # two words of one stem trade places inside a short run (stemmed, both read "http"): compared as written too
    ("How do I redirect http to https in nginx?", "How do I redirect https to http in nginx?"),
    ("Should I rename the file to files?", "Should I rename the files to file?"),
])
def test_the_same_words_in_another_order_are_vetoed(a: str, b: str) -> None:
    assert Verifier().check(b, a, ("order",)).reason == "order"
    assert Verifier().check(b, a, ()).ok  # only that family


@pytest.mark.parametrize("a,b", [
    ("In Rust, how do I read a file line by line?", "How do I read a file line by line in Rust?"),
    ("For a beginner, which guitar should I buy?", "Which guitar should I buy for a beginner?"),
    ("What is a monad?", "Tell me what a monad is."),
    ("Explain recursion please", "please explain recursion"),
])
def test_a_phrase_moved_to_the_other_end_is_not_reordered(a: str, b: str) -> None:
    assert Verifier().check(b, a, ("order",)).ok


@pytest.mark.parametrize("a,b", [
    ("Is it likely to snow in Oslo in May?", "Is it unlikely to snow in Oslo in May?"),
    ("Do most economists agree with rent control?", "Do most economists disagree with rent control?"),
    ("Why is a mortgage broker useful?", "Why is a mortgage broker useless?"),
    ("Is this plan legal for a charity?", "Is this plan illegal for a charity?"),
])
def test_a_negating_prefix_or_suffix_is_an_antonym(a: str, b: str) -> None:
    assert Verifier().check(b, a, ("antonym",)).reason.startswith("antonym:")
    assert Verifier().check(a, a.replace("?", " today?"), ("antonym",)).ok


def test_order_is_a_default_veto_and_not_an_input_of_the_learned_model() -> None:
    assert "order" in CacheConfig().verifier_veto
    s = Verifier().signals("Why does the cat chase the dog?", "Why does the dog chase the cat?")
    assert s.rules_ok  # the trained model's rules_ok feature keeps the families it was trained with


@pytest.mark.parametrize("a,b", [
    ("There is no excuse for a slow checkout page", "There isn't no excuse for a slow checkout page"),
    ("It is safe to microwave this bowl", "It isn’t safe to microwave this bowl"),  # typographic apostrophe
    ("You can reheat rice twice", "You cant reheat rice twice"),  # chat typing without the apostrophe
])
def test_negations_are_counted_and_written_every_way(a: str, b: str) -> None:
    assert Verifier().check(b, a, ("negation",)).reason == "negation"
    assert Verifier().check("Isn't it safe to reheat rice?", "Is it not safe to reheat rice?", ("negation",)).ok
