"""The multilingual category in decisions and config (signals.multilingual): pure functions of signals + config."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from semrouter.config import parse_config
from semrouter.config.load import ConfigError
from semrouter.decision.engine import decide
from semrouter.devstack import ROOT
from semrouter.signals.keywords import KeywordSignal
from semrouter.signals.onnx.multilingual import MultilingualCategory
from semrouter.signals.types import Analysis


# Hand-written prompts (not from any data set).
JAPANESE_MATH = "方程式 2x + 6 = 14 を解き、さらに x の二乗を 0 から 3 まで積分した値を求めてください。"
SPANISH_MATH = "Resuelve la ecuación 2x + 6 = 14 y calcula el área bajo la curva y = x² entre 0 y 3."


def cfg(rules: list[dict] | None = None, threshold: float = 0.6, **multilingual: object):
    return parse_config({
        "routing": {"default_model": "small"},
        "signals": {"enabled": False, "multilingual": {"threshold": threshold, **multilingual}},
        "models": [
            {"name": "small", "endpoints": [{"address": "h", "port": 1}], "pricing": {"prompt_per_1m": 0.1}},
            {"name": "big", "endpoints": [{"address": "h", "port": 2}], "pricing": {"prompt_per_1m": 3.0}},
            {"name": "polyglot", "endpoints": [{"address": "h", "port": 3}], "pricing": {"prompt_per_1m": 1.0}},
        ],
        "categories": [
            {"name": "math", "model_scores": [{"model": "big", "score": 0.9}, {"model": "small", "score": 0.6}]},
            {"name": "history", "model_scores": [{"model": "small", "score": 0.8}]},
        ],
        "keyword_rules": [{"name": "calc", "category": "math", "keywords": ["derivada"]}],
        "language": {"rules": rules if rules is not None else [{"languages": ["*"], "model": "polyglot"}]},
    })


def ml(english: dict[str, float] | None = None, **p: float) -> Analysis:
    return Analysis(category_probs=english or {"history": 0.9, "math": 0.1}, multilingual_probs=p)


def test_confident_multilingual_category_routes_before_the_language_rule() -> None:
    d = decide(cfg(), "auto", None, ml(math=0.8, history=0.2), language="ja")
    assert (d.model, d.category, d.reason, d.confidence) == ("big", "math", "multilingual", 0.8)


def test_unsure_multilingual_category_leaves_the_language_rule_and_no_category() -> None:
    d = decide(cfg(), "auto", None, ml(math=0.55, history=0.45), language="ja")
    assert (d.model, d.category, d.reason, d.category_guess) == ("polyglot", None, "language", None)


def test_unsure_without_a_rule_gets_the_default_model() -> None:
    d = decide(cfg(rules=[]), "auto", None, ml(math=0.55, history=0.45), language="ja")
    assert (d.model, d.category, d.reason) == ("small", None, "default")


def test_english_prompts_ignore_multilingual_probs_and_keep_the_english_classifier() -> None:
    d = decide(cfg(), "auto", None, ml({"history": 0.9, "math": 0.1}, math=0.99), language="en")
    assert (d.category, d.reason) == ("history", "classifier")


def test_the_english_head_is_never_trusted_on_japanese_even_when_sure() -> None:
    d = decide(cfg(rules=[]), "auto", None, Analysis(category_probs={"history": 0.99}), language="ja")
    assert (d.category, d.reason) == (None, "default")


def test_a_matching_keyword_rule_still_wins_over_the_multilingual_category() -> None:
    c = cfg(rules=[])
    kw = KeywordSignal(c.keyword_rules).evaluate("¿Cuál es la derivada de x al cubo?")
    d = decide(c, "auto", kw, ml(history=0.9, math=0.1), language="es")
    assert (d.category, d.reason) == ("math", "keyword:calc")


def test_an_unconfigured_top_category_does_not_route() -> None:
    d = decide(cfg(), "auto", None, ml(law=0.9, math=0.1), language="ja")
    assert (d.model, d.reason) == ("polyglot", "language")


def test_explicit_model_reports_the_multilingual_category_without_rerouting() -> None:
    d = decide(cfg(), "small", None, ml(math=0.9, history=0.1), language="ja")
    assert (d.model, d.category, d.reason) == ("small", "math", "explicit")


@pytest.mark.parametrize("languages, key_hint", [
    (["en"], "classifier_languages"),
    (["sw"], "language.detect"),
])
def test_languages_are_validated_against_the_language_section(languages: list[str], key_hint: str) -> None:
    with pytest.raises((ConfigError, ValueError)) as e:
        cfg(languages=languages)
    assert "signals.multilingual.languages" in str(e.value) and key_hint in str(e.value)


def test_the_default_languages_do_not_invalidate_a_narrower_detect_list() -> None:
    c = parse_config({
        "routing": {"default_model": "small"}, "signals": {"enabled": False},
        "models": [{"name": "small", "endpoints": [{"address": "h", "port": 1}]}],
        "language": {"detect": ["en", "es"]},
    })
    assert c.signals.multilingual.languages == ("ja",)  # never reported by lingua here: no effect


def test_threshold_out_of_range_is_refused() -> None:
    with pytest.raises((ConfigError, ValueError)) as e:
        cfg(threshold=1.5)
    assert "threshold" in str(e.value)


# ---------------------------------------------------------------- the analyzer (built models/ and models/e5)

E5_READY = (ROOT / "models" / "manifest.json").is_file() and not MultilingualCategory.missing(ROOT / "models" / "e5")


@pytest.mark.skipif(not E5_READY, reason="models/ or models/e5 not built: run `make models`")
async def test_only_listed_languages_pay_for_the_multilingual_pass_and_they_share_one() -> None:
    from semrouter.config.schema import Category, ModelScore
    from semrouter.signals.config import MultilingualConfig, SignalsConfig
    from semrouter.signals.language import LanguageConfig, LanguageDetector
    from semrouter.signals.onnx.analyzer import OnnxAnalyzer

    cats = [Category(name=n, model_scores=(ModelScore(model="m", score=0.5),)) for n in ("math", "history", "law")]
    sig = SignalsConfig(model_dir=str(ROOT / "models"),
                        multilingual=MultilingualConfig(model_dir=str(ROOT / "models" / "e5"), languages=("ja", "es")))
    a = await OnnxAnalyzer.create(sig, cats, language=LanguageDetector(LanguageConfig()))
    try:
        assert a.multilingual is not None and a.multilingual.labels == ("math", "history", "law")
        english = await a.analyze("Solve for x: 3x + 7 = 22, and explain each step.")
        assert english.language == "en" and english.multilingual_probs == {} and a.multilingual.runs == 0
        french = await a.analyze("Pourquoi l'Empire romain d'Occident s'est-il effondré ?")  # not listed
        assert french.language == "fr" and french.multilingual_probs == {} and a.multilingual.runs == 0
        ja, es = await asyncio.gather(a.analyze(JAPANESE_MATH), a.analyze(SPANISH_MATH))
        assert (ja.language, es.language) == ("ja", "es")
        assert max(ja.multilingual_probs, key=ja.multilingual_probs.__getitem__) == "math"
        assert sum(es.multilingual_probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert a.multilingual.runs in (1, 2)  # one pass per micro-batch: both rows share it when batched together
        only_cat = await a.analyze(JAPANESE_MATH, want=frozenset({"jailbreak"}))  # no category wanted: no pass
        assert only_cat.multilingual_probs == {}
    finally:
        await a.close()


# ---- the e5 head's second opinion on English prompts the classifier is unsure of (signals.multilingual.second_opinion)

def test_second_opinion_gate_takes_only_rows_under_the_threshold() -> None:
    from semrouter.signals.onnx.multilingual import needs_second_opinion

    p = np.array([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.5, 0.5]], np.float32)
    assert needs_second_opinion(p, 0.7).tolist() == [False, True, False, True]
    assert needs_second_opinion(p, 1.0).all()
    assert not needs_second_opinion(np.zeros((0, 2), np.float32), 0.7).any()


def test_second_opinion_mix_can_turn_an_unsure_answer_and_keeps_a_distribution() -> None:
    from semrouter.signals.onnx.multilingual import fuse_second_opinion

    classifier = np.array([[0.45, 0.40, 0.15]], np.float32)
    e5 = np.array([[0.05, 0.90, 0.05]], np.float32)
    f = fuse_second_opinion(classifier, e5, weight=1.0, temperature=1.0)
    assert f.argmax() == 1 and f.sum() == pytest.approx(1.0, abs=1e-6)
    # weight 0 at temperature 1 gives the classifier back
    assert fuse_second_opinion(classifier, e5, 0.0, 1.0) == pytest.approx(classifier / classifier.sum(), abs=1e-6)
    # a higher temperature flattens
    assert fuse_second_opinion(classifier, e5, 1.0, 3.0).max() < f.max()
    with pytest.raises(ValueError, match="shape"):
        fuse_second_opinion(classifier, e5[:, :2], 1.0, 1.0)


def test_second_opinion_languages_must_be_classifier_languages() -> None:
    with pytest.raises(ConfigError, match="second_opinion.languages.*classifier_languages"):
        cfg(second_opinion={"languages": ["fr"]})
    assert cfg(second_opinion={"languages": ["en"], "below": 0.6}).signals.multilingual.second_opinion.below == 0.6
    with pytest.raises(ConfigError, match="below"):
        cfg(second_opinion={"below": 0})


@pytest.mark.skipif(not E5_READY, reason="models/ or models/e5 not built: run `make models`")
async def test_only_unsure_english_prompts_take_the_second_opinion() -> None:
    from semrouter.config.schema import Category, ModelScore
    from semrouter.signals.config import MultilingualConfig, SecondOpinionConfig, SignalsConfig
    from semrouter.signals.language import LanguageConfig, LanguageDetector
    from semrouter.signals.onnx.analyzer import OnnxAnalyzer

    names = ("math", "physics", "chemistry", "biology", "health", "computer science", "engineering", "economics",
             "business", "law", "history", "philosophy", "psychology", "other")
    cats = [Category(name=n, model_scores=(ModelScore(model="m", score=0.5),)) for n in names]

    async def build(enabled: bool) -> OnnxAnalyzer:
        ml = MultilingualConfig(model_dir=str(ROOT / "models" / "e5"),
                                second_opinion=SecondOpinionConfig(enabled=enabled))
        return await OnnxAnalyzer.create(SignalsConfig(model_dir=str(ROOT / "models"), multilingual=ml), cats,
                                         language=LanguageDetector(LanguageConfig()))

    unsure = "What did the Treaty of Westphalia change about European politics?"  # hand-written
    alone, both = await build(False), await build(True)
    try:
        sure = await both.analyze("Solve for x: 3x + 7 = 22, and explain each step.")
        assert sure.category_probs["math"] > 0.9 and both.second_opinions == 0
        assert both.multilingual is not None and both.multilingual.runs == 0  # a confident prompt pays nothing
        a, b = await alone.analyze(unsure), await both.analyze(unsure)
        assert max(a.category_probs.values()) < 0.5  # the classifier alone: the default model
        top = max(b.category_probs, key=b.category_probs.__getitem__)
        assert (top, both.second_opinions, both.multilingual.runs) == ("history", 1, 1)
        assert b.category_probs[top] >= 0.5 and b.multilingual_probs == {}  # English: no multilingual category
        assert sum(b.category_probs.values()) == pytest.approx(1.0, abs=1e-5)
    finally:
        await alone.close()
        await both.close()
