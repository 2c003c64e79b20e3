"""The language signal end to end through Envoy: x-vsr-language on answers, per-language rules route."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import Client, start_stack, user
from semrouter.devstack import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not (ROOT / "models" / "manifest.json").exists(),
                                                  reason="models/ not built: run `make models`")]

# Hand-written prompts (not from any data set).
SPANISH_MATH = "¿Cuál es la derivada de x al cubo con respecto a x? Explica cada paso."
JAPANESE_MATH = "xの三乗をxについて微分すると何になりますか。途中の計算も説明してください。"
FRENCH_HISTORY = "Pourquoi l'Empire romain d'Occident s'est-il effondré au cinquième siècle ?"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    # Spanish is routed as math (the category's model, system prompt and reasoning), Japanese to the large model;
    # every other non-English language falls to the default model. quality_target 1: always the best candidate.
    # PII stays on: outside signals.pii.head_languages a name needs personal context, so Spanish words the
    # English-trained head reads as PERSON no longer reroute away from qwen3-32b's PII policy.
    # The multilingual category is off here (the gate alone; test_e2e_multilingual.py has it on).
    rules = [{"languages": ["es"], "category": "math"}, {"languages": ["ja"], "model": "qwen3-32b"}]
    stack, c = start_stack(tmp_path_factory.mktemp("language"),
                           {"cache.enabled": False, "routing.quality_target": 1.0, "language.rules": rules,
                            "signals.multilingual.enabled": False})
    try:
        yield c
    finally:
        stack.stop()


def test_spanish_math_is_routed_by_its_language_rule(client: Client) -> None:
    r = client.chat(user(SPANISH_MATH))
    assert r.status == 200
    assert r.headers["x-vsr-language"] == "es"
    assert r.headers["x-semrouter-reason"] == "language"
    assert r.headers["x-vsr-selected-category"] == "math"
    assert r.headers["x-demo-model"] == "qwen3-32b"
    assert "careful mathematician" in r.json()["choices"][0]["message"]["content"]  # math's system prompt


def test_japanese_math_is_routed_by_its_language_rule(client: Client) -> None:
    r = client.chat(user(JAPANESE_MATH))
    assert r.status == 200
    assert r.headers["x-vsr-language"] == "ja"
    assert r.headers["x-semrouter-reason"] == "language"
    assert r.headers["x-demo-model"] == "qwen3-32b"
    assert "x-vsr-selected-category" not in r.headers  # never a (confident or guessed) category


def test_other_language_without_a_rule_gets_the_default_model_and_no_category(client: Client) -> None:
    r = client.chat(user(FRENCH_HISTORY))
    assert r.status == 200
    assert r.headers["x-vsr-language"] == "fr"
    assert r.headers["x-semrouter-reason"] == "default"
    assert r.headers["x-demo-model"] == "llama-3.1-8b"
    assert "x-vsr-selected-category" not in r.headers


def test_english_keeps_the_classifier_and_a_client_sent_language_header_is_replaced(client: Client) -> None:
    r = client.chat(user("Solve for x: 3x + 7 = 22, and explain each step."), headers={"x-vsr-language": "ja"})
    assert r.status == 200
    assert r.headers["x-vsr-language"] == "en"
    assert (r.headers["x-vsr-selected-category"], r.headers["x-semrouter-reason"]) == ("math", "classifier")
