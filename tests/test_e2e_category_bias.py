"""`signals.classifier.category_bias` end to end through Envoy: a per-category log-odds bias moves a close call of the
category head, and leaves a clear one alone.

With the second opinion off, the classifier alone splits UNSURE_HISTORY between `other` and `history` (~0.44 each)
and the request gets the default model (tests/test_e2e_category_second_opinion.py); +3 log-odds for history makes it
a confident history question.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import Client, start_stack, user
from semrouter.devstack import ROOT

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not (ROOT / "models" / "manifest.json").exists(),
                                 reason="models/ not built: run `make models`")]

# Hand-written (not from any data set).
UNSURE_HISTORY = "What did the Treaty of Westphalia change about European politics?"
CONFIDENT_MATH = "Solve for x: 3x + 7 = 22, and explain each step."


@pytest.fixture(scope="module")
def biased(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    stack, c = start_stack(tmp_path_factory.mktemp("bias"), {
        "cache.enabled": False, "routing.quality_target": 1.0,
        "signals.multilingual.second_opinion.enabled": False,
        "signals.classifier.category_bias": {"history": 3.0}})
    try:
        yield c
    finally:
        stack.stop()


def test_bias_turns_a_close_call_into_its_category(biased: Client) -> None:
    r = biased.chat(user(UNSURE_HISTORY))
    assert r.status == 200
    assert (r.headers["x-semrouter-reason"], r.headers["x-vsr-selected-category"]) == ("classifier", "history")


def test_bias_leaves_a_clear_answer_alone(biased: Client) -> None:
    r = biased.chat(user(CONFIDENT_MATH))
    assert r.status == 200
    assert (r.headers["x-semrouter-reason"], r.headers["x-vsr-selected-category"]) == ("classifier", "math")
