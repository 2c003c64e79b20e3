"""The language signal (lingua) and per-language routing: detection, config validation, decisions."""

from __future__ import annotations

import pytest

from semrouter.config import parse_config
from semrouter.config.load import ConfigError
from semrouter.decision.engine import decide
from semrouter.signals.keywords import KeywordSignal
from semrouter.signals.language import LanguageConfig, LanguageDetector
from semrouter.signals.types import Analysis

# Hand-written prompts (not from any data set).
SPANISH_MATH = "¿Cuál es la derivada de x al cubo con respecto a x? Explica cada paso."
JAPANESE_MATH = "xの三乗をxについて微分すると何になりますか。途中の計算も説明してください。"
ENGLISH_MATH = "What is the derivative of x cubed with respect to x? Explain each step."


def cfg(rules: list[dict] | None = None, **language: object):
    return parse_config({
        "routing": {"default_model": "small"},
        "signals": {"enabled": False},
        "models": [
            {"name": "small", "endpoints": [{"address": "h", "port": 1}], "pricing": {"prompt_per_1m": 0.1}},
            {"name": "big", "endpoints": [{"address": "h", "port": 2}], "pricing": {"prompt_per_1m": 3.0}},
            {"name": "polyglot", "endpoints": [{"address": "h", "port": 3}], "pricing": {"prompt_per_1m": 1.0},
             "pii_policy": {"allow_by_default": False}},
        ],
        "categories": [
            {"name": "math", "model_scores": [{"model": "big", "score": 0.9}, {"model": "small", "score": 0.6}],
             "system_prompt": {"text": "You are a careful mathematician."}},
            {"name": "history", "model_scores": [{"model": "small", "score": 0.8}]},
        ],
        "keyword_rules": [{"name": "calc", "category": "math", "keywords": ["derivada", "derivative"]}],
        "language": {"rules": rules if rules is not None else [{"languages": ["es", "ja"], "model": "polyglot"}],
                     **language},
    })


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(LanguageConfig())


@pytest.mark.parametrize("text, code", [
    (SPANISH_MATH, "es"), (JAPANESE_MATH, "ja"), (ENGLISH_MATH, "en"),
    ("Quelle est la capitale de l'Australie ?", "fr"), ("Wie funktioniert die Photosynthese?", "de"),
    ("Почему небо голубое?", "ru"), ("为什么天空是蓝色的？", "zh"),
    ("12345 + 678 = ?", "und"), ("", "und"),
])
def test_detects_language_or_und(detector: LanguageDetector, text: str, code: str) -> None:
    assert detector.detect(text) == code
    assert code in detector.labels  # the metrics label set is closed


def test_only_the_window_is_read() -> None:
    d = LanguageDetector(LanguageConfig(max_chars=40))
    assert d.detect("The following question is in English. " + SPANISH_MATH * 20) == "en"


def test_confident_wrong_category_is_not_trusted_off_english() -> None:
    c = cfg(rules=[])
    # the classifier is sure (wrongly) that the Spanish math question is history: not routed on, not reported
    d = decide(c, "auto", None, Analysis(category_probs={"history": 0.97, "math": 0.03}), language="es")
    assert (d.model, d.category, d.reason, d.reported_category) == ("small", None, "default", None)
    assert d.language == "es"
    # English: the classifier decides as before
    d = decide(c, "auto", None, Analysis(category_probs={"history": 0.97, "math": 0.03}), language="en")
    assert (d.model, d.category, d.reason) == ("small", "history", "classifier")
    # und (numbers, symbols) stays with the classifier
    d = decide(c, "auto", None, Analysis(category_probs={"math": 0.9, "history": 0.1}), language="und")
    assert (d.category, d.reason) == ("math", "classifier")


@pytest.mark.parametrize("text", [SPANISH_MATH, JAPANESE_MATH])
def test_spanish_and_japanese_math_follow_the_language_rule(detector: LanguageDetector, text: str) -> None:
    c = cfg()
    lang = detector.detect(text)
    kw = KeywordSignal(c.keyword_rules).evaluate(text)  # "derivada" matches the math keyword rule...
    d = decide(c, "auto", kw, Analysis(category_probs={"history": 0.95, "math": 0.05}), language=lang)
    # ...but the language rule comes first: the preferred model, no category, no confident guess
    assert (d.model, d.reason, d.category, d.reported_category) == ("polyglot", "language", None, None)


def test_language_rule_can_route_as_a_category() -> None:
    c = cfg(rules=[{"languages": ["*"], "category": "math"}])
    d = decide(c, "auto", None, Analysis(category_probs={"history": 0.99}), language="ja")
    assert (d.model, d.category, d.reason) == ("big", "math", "language")
    assert d.system_prompt is not None and "mathematician" in d.system_prompt.text


def test_language_rule_model_still_obeys_pii_policy() -> None:
    from semrouter.signals.types import PIIEntity

    c = cfg()
    a = Analysis(pii=(PIIEntity("US_SSN", 0, 11, "123-45-6789"),))
    d = decide(c, "auto", None, a, language="es")
    assert (d.model, d.reason) == ("small", "pii_reroute")


def test_explicit_model_is_untouched_by_language_rules() -> None:
    d = decide(cfg(), "big", None, None, language="es")
    assert (d.model, d.reason, d.language) == ("big", "explicit", "es")


@pytest.mark.parametrize("language, expected", [
    ({"rules": [{"languages": ["es"], "model": "nope"}]}, "language.rules[0].model: 'nope' is not a configured"),
    ({"rules": [{"languages": ["es"], "category": "cooking"}]}, "language.rules[0].category: 'cooking'"),
    ({"rules": [{"languages": ["es"]}]}, "set exactly one of `model`"),
    ({"rules": [{"languages": ["es"], "model": "big", "category": "math"}]}, "set exactly one of `model`"),
    ({"rules": [{"languages": ["xx"], "model": "big"}]}, "not ISO 639-1 codes"),
    ({"detect": ["en", "es"], "rules": [{"languages": ["ja"], "model": "big"}]},
     "rules[0].languages: ['ja'] are not in `detect`"),
    ({"detect": ["es", "ja"]}, "classifier_languages: ['en'] are not in `detect`"),
    ({"detect": ["en", "en"]}, "duplicate language codes"),
])
def test_config_errors_name_the_key_and_the_fix(language: dict, expected: str) -> None:
    rules = language.pop("rules", [])
    with pytest.raises((ConfigError, ValueError)) as e:
        cfg(rules=rules, **language)
    assert expected in str(e.value)


def test_codes_are_normalised() -> None:
    c = cfg(rules=[{"languages": [" ES ", "Ja"], "model": "polyglot"}])
    assert c.language.rules[0].languages == ("es", "ja")


@pytest.mark.parametrize("text", ["hello", "be brief", "Convert 5 miles to kilometers"])
def test_short_english_is_never_sent_off_the_classifier(detector: LanguageDetector, text: str) -> None:
    # lingua alone reads these as Italian or Dutch (low confidence): they must stay with the classifier
    assert LanguageConfig().trusted(detector.detect(text))


async def test_the_analyzer_detects_the_language_beside_its_encoder_run() -> None:
    import asyncio

    from onnx_models import ensure_models
    from semrouter.signals.config import SignalsConfig
    from semrouter.signals.onnx.analyzer import OnnxAnalyzer

    a = await OnnxAnalyzer.create(SignalsConfig(model_dir=str(ensure_models())), (),
                                  LanguageDetector(LanguageConfig()))
    try:
        got = await asyncio.gather(*(a.analyze(t) for t in (SPANISH_MATH, JAPANESE_MATH, ENGLISH_MATH, "42")))
        assert [x.language for x in got] == ["es", "ja", "en", "und"]
        assert all(x.embedding is not None and "language" not in x.errors for x in got)
        assert (await a.embed(["cache-only text"])).shape[0] == 1  # embedding-only jobs skip the detector
    finally:
        await a.close()
