"""casing.case_differs: capitals that carry meaning refuse a cache candidate; chat-style lower case does not."""

from __future__ import annotations

import pytest

from semrouter.cache.casing import case_differs


@pytest.mark.parametrize(("a", "b"), [
    ("Translate May into French.", "Translate may into French."),   # the month vs the verb
    ("Is it May yet in Paris?", "Is it may yet in Paris?"),
    ("What does US stand for?", "What does us stand for?"),         # an acronym vs a pronoun
    ("Explain the IT department's role", "Explain the it department's role"),
])
def test_meaning_bearing_case_differs(a: str, b: str) -> None:
    assert case_differs(a, b) and case_differs(b, a)


@pytest.mark.parametrize(("a", "b"), [
    ("How do I reverse a list in Python?", "how do i reverse a list in python"),   # typed all in lower case
    ("How do I reverse a list in Python?", "how can I reverse a list in python"),  # only 'I' capitalised
    ("What is NASA?", "what is nasa"),
    ("what does US stand for", "what does us stand for"),          # no capital at all on one side: ambiguous
    ("May I ask what time it is?", "may i ask what time it is"),    # sentence-initial capitals never count
    ("Hello. May I go?", "Hello. may I go?"),
    ("Who makes the Polish sausage?", "Who makes the polish sausage?"),  # the other side writes no inner capital
    ("Name a city in Spain.", "Name a city in Spain."),
    ("What is the capital of France?", "WHAT IS THE CAPITAL OF FRANCE?"),  # one case style throughout
    ("What is the capital of France?", "What Is The Capital Of France?"),
])
def test_chat_casing_and_sentence_starts_do_not(a: str, b: str) -> None:
    assert not case_differs(a, b) and not case_differs(b, a)


def test_long_prompts_take_milliseconds() -> None:
    import time

    head = "Tell me about Paris and " * 20_000
    t = time.perf_counter()
    assert case_differs(head + "the month of May", head + "the month of may")
    assert time.perf_counter() - t < 2.0
