"""Decision engine and keyword rules: pure functions of signals + config."""

from __future__ import annotations

import pytest

from semrouter.config import parse_config
from semrouter.config.schema import KeywordRule
from semrouter.decision.engine import decide, wants_large
from semrouter.signals.keywords import KeywordSignal
from semrouter.signals.types import Analysis, PIIEntity


def cfg(quality_target: float = 0.5, classifier_threshold: float = 0.5):
    return parse_config({
        "routing": {"default_model": "small", "quality_target": quality_target},
        "signals": {"enabled": False, "classifier": {"threshold": classifier_threshold}},
        "models": [
            {"name": "small", "endpoints": [{"address": "h", "port": 1}], "pricing": {"prompt_per_1m": 0.1}},
            {"name": "big", "endpoints": [{"address": "h", "port": 2}], "pricing": {"prompt_per_1m": 3.0},
             "reasoning_family": {"type": "chat_template_kwargs", "parameter": "enable_thinking"},
             "pii_policy": {"allow_by_default": False, "allowed_types": ["EMAIL_ADDRESS"]}},
            {"name": "private", "endpoints": [{"address": "h", "port": 3}],
             "pii_policy": {"allow_by_default": False}},
        ],
        "categories": [
            {"name": "math", "model_scores": [{"model": "big", "score": 0.9, "use_reasoning": True},
                                              {"model": "small", "score": 0.6}]},
            {"name": "history", "model_scores": [{"model": "small", "score": 0.8}]},
            {"name": "physics", "reasoning_above_complexity": 0.7,
             "model_scores": [{"model": "big", "score": 0.9}, {"model": "small", "score": 0.5}]},
            {"name": "secret", "model_scores": [{"model": "private", "score": 0.9}]},
        ],
        "keyword_rules": [
            {"name": "calc", "category": "math", "keywords": ["integral", "derivative"]},
            {"name": "both", "category": "history", "operator": "AND", "keywords": ["roman", "empire"]},
        ],
    })


def probs(**p: float) -> Analysis:
    return Analysis(category_probs=p)


def test_keyword_rule_wins_and_names_itself() -> None:
    c = cfg()
    kw = KeywordSignal(c.keyword_rules).evaluate("Find the INTEGRAL of x")
    d = decide(c, "auto", kw, probs(history=0.99))
    assert (d.model, d.category, d.reason) == ("big", "math", "keyword:calc")
    assert d.use_reasoning is True


@pytest.mark.parametrize("op, keywords, text, hit", [
    ("OR", ["alpha", "beta"], "only beta here", True),
    ("AND", ["alpha", "beta"], "only beta here", False),
    ("AND", ["alpha", "beta"], "beta and alpha", True),
    ("NOR", ["alpha", "beta"], "gamma", True),
    ("NOR", ["alpha", "beta"], "alpha", False),
])
def test_keyword_operators(op: str, keywords: list[str], text: str, hit: bool) -> None:
    rule = KeywordRule(name="r", category="math", operator=op, keywords=tuple(keywords))
    assert (KeywordSignal([rule]).evaluate(text) is not None) is hit


def test_keyword_case_whole_word_and_regex() -> None:
    cs = KeywordRule(name="r", category="math", keywords=("SQL",), case_sensitive=True)
    assert KeywordSignal([cs]).evaluate("write SQL") is not None
    assert KeywordSignal([cs]).evaluate("write sql") is None
    ww = KeywordRule(name="r", category="math", keywords=("cat",))
    assert KeywordSignal([ww]).evaluate("concatenate") is None
    rx = KeywordRule(name="r", category="math", keywords=(r"\d+\s*\+\s*\d+",), regex=True)
    assert KeywordSignal([rx]).evaluate("what is 2 + 2") is not None


def test_classifier_vote_above_threshold() -> None:
    d = decide(cfg(), "auto", None, probs(math=0.7, history=0.3))
    assert (d.model, d.category, d.reason) == ("big", "math", "classifier")
    assert d.confidence == pytest.approx(0.7)


def test_low_confidence_falls_back_to_default_never_fails() -> None:
    d = decide(cfg(classifier_threshold=0.8), "auto", None, probs(math=0.6, history=0.4))
    assert (d.model, d.category, d.reason, d.refusal) == ("small", None, "default", None)
    # the classifier's best guess is still reported (x-vsr-selected-category), just not routed on
    assert (d.category_guess, d.reported_category) == ("math", "math")
    assert decide(cfg(), "auto", None, None).model == "small"
    assert decide(cfg(), "auto", None, None).reported_category is None  # no classifier ran: nothing to report
    d = decide(cfg(), "auto", None, probs(poetry=0.99))
    assert d.model == "small" and d.reported_category is None  # label not configured
    confident = decide(cfg(), "auto", None, probs(math=0.9, history=0.1))
    assert confident.category == "math" and confident.category_guess is None


def test_explicit_and_unknown_models() -> None:
    assert decide(cfg(), "big").reason == "explicit"
    d = decide(cfg(), "gpt-9")
    assert d.refusal is not None and d.refusal.status == 404 and d.refusal.code == "model_not_found"


def test_quality_target_extremes_and_monotone() -> None:
    hard = Analysis(category_probs={"math": 0.9}, complexity=0.99)
    easy = Analysis(category_probs={"math": 0.9}, complexity=0.01)
    assert decide(cfg(0.0), "auto", None, hard).model == "small"  # 0 = always the cheapest
    assert decide(cfg(0.0), "auto", None, hard).reason == "cheapest"
    assert decide(cfg(1.0), "auto", None, easy).model == "big"    # 1 = always the best
    assert decide(cfg(1.0), "auto", None, easy).reason == "classifier"
    assert decide(cfg(0.0), "auto", None, probs(math=0.9)).model == "small"  # even without a complexity score
    d = decide(cfg(0.5), "auto", None, hard)
    assert (d.model, d.reason, d.complexity) == ("big", "complexity:large", 0.99)
    assert decide(cfg(0.5), "auto", None, easy).reason == "complexity:small"
    # more complex never routes to a cheaper model for the same knob; higher knob never cheaper
    for t in (0.1, 0.3, 0.5, 0.7, 0.9):
        picks = [wants_large(c / 10, t) for c in range(11)]
        assert picks == sorted(picks)
        assert all(wants_large(c / 10, t) <= wants_large(c / 10, min(1.0, t + 0.2)) for c in range(11))


def test_pii_policy_reroutes_then_refuses() -> None:
    ssn = Analysis(category_probs={"math": 0.9}, pii=(PIIEntity("US_SSN", 0, 11, "123-45-6789"),))
    d = decide(cfg(), "auto", None, ssn)
    assert (d.model, d.reason) == ("small", "pii_reroute")
    email = Analysis(category_probs={"math": 0.9}, pii=(PIIEntity("EMAIL_ADDRESS", 0, 5, "a@b.c"),))
    assert decide(cfg(), "auto", None, email).model == "big"  # allowed type
    explicit = decide(cfg(), "big", None, ssn)
    assert explicit.refusal is not None and explicit.refusal.status == 403
    assert explicit.refusal.types == ("US_SSN",)


def test_pii_refused_when_no_candidate_may_see_it() -> None:
    c = parse_config({
        "routing": {"default_model": "private"},
        "models": [{"name": "private", "endpoints": [{"address": "h", "port": 3}],
                    "pii_policy": {"allow_by_default": False}}],
    })
    d = decide(c, "auto", None, Analysis(pii=(PIIEntity("PERSON", 0, 4, "Anna"),)))
    assert d.refusal is not None and d.refusal.code == "pii_not_allowed" and "PERSON" in d.refusal.message


def test_reasoning_switches_on_for_complex_requests_where_the_category_allows() -> None:
    c = cfg(1.0)
    hard = decide(c, "auto", None, Analysis(category_probs={"physics": 0.9}, complexity=0.8))
    easy = decide(c, "auto", None, Analysis(category_probs={"physics": 0.9}, complexity=0.3))
    assert (hard.model, hard.use_reasoning) == ("big", True)
    assert (easy.model, easy.use_reasoning) == ("big", False)
    # a model without a reasoning family never gets it
    small = decide(cfg(0.0), "auto", None, Analysis(category_probs={"physics": 0.9}, complexity=0.9))
    assert (small.model, small.use_reasoning) == ("small", False)


def test_low_confidence_guess_is_reported_in_headers_with_the_default_reason() -> None:
    from semrouter.server.request_phase import _decision_headers

    d = decide(cfg(classifier_threshold=0.8), "auto", None, probs(math=0.6, history=0.4))
    h = _decision_headers(d, has_reasoning=False)
    assert h["x-vsr-selected-category"] == "math"
    assert h["x-semrouter-reason"] == "default" and h["x-vsr-selected-model"] == "small"
