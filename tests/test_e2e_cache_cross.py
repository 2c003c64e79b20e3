"""`verifier: cross` (the cross-encoder cache verifier, opt-in) end to end through Envoy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import served_from_cache as _hit, start_stack, store_in_cache as _stored
from semrouter.devstack import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not (ROOT / "models" / "cache_verifier_cross.onnx").exists(),
                                                  reason="models/ not built: run `make models`")]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "semrouter", "cache", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_cross_verifier_serves_a_synonym_and_refuses_negation_swap_unit_and_order(tmp_path: Path) -> None:
    stack, c = start_stack(tmp_path, {"cache.milvus.uri": str(tmp_path / "m" / "cache.db"),
                                      "cache.lookup_timeout_ms": 2000, "cache.verifier": "cross"})
    try:
        h = {"authorization": "Bearer cross"}
        for q in ("How can I make my old laptop run faster?", "Is it safe to eat raw eggs?",
                  "Convert 10 euros to dollars", "How many minutes should I boil an egg for a runny yolk?",
                  "Why does my dog chase the cat next door?"):
            _stored(c, q, h)
        assert _hit(c, "How can I make my old laptop run quicker?", h)  # a synonym: no rule accepts it
        assert not _hit(c, "Is it not safe to eat raw eggs?", h)
        assert not _hit(c, "Convert 10 dollars to euros", h)
        assert not _hit(c, "How many seconds should I boil an egg for a runny yolk?", h)  # another unit
        assert not _hit(c, "Why does the cat next door chase my dog?", h)  # the same words, roles swapped
        assert _hit(c, "Is eating raw eggs safe?", h)  # a paraphrase the cross-encoder (and its guard) accept
        from semrouter.cache.config import CacheConfig
        from semrouter.cache.keys import tenancy
        out = json.loads(_cli("explain", "How can I make my old laptop run quicker?", "--tenant",
                              tenancy(CacheConfig()).tenant(h), "--router", f"127.0.0.1:{stack.port(50052)}").stdout)
        assert out["verifier"] == "cross"  # the cross-encoder loaded (not the rules fallback)
        best = out["candidates"][0]
        assert best["verifier_score"] is not None and best["verifier_score"] >= out["verifier_threshold"]
    finally:
        stack.stop()


_SERVICE = ("Our team runs a small invoicing service for freelancers. Customers upload their timesheets, the service "
            "turns them into invoices and sends them by email. Everything runs on a handful of virtual machines. "
            "The webhook accepts {} requests only. What is the safest way to migrate it without losing data? Please "
            "give concrete steps and the commands we need.")


def test_a_long_prompt_with_one_swapped_term_misses_and_a_typo_in_it_hits(tmp_path: Path) -> None:
    """The cross-encoder alone scores this GET/POST swap 0.89 (trained on pairs of <= 96 tokens; this one is ~155):
    cache.cross_long_substitution_words refuses it without a run."""
    stack, c = start_stack(tmp_path, {"cache.milvus.uri": str(tmp_path / "m" / "cache.db"),
                                      "cache.lookup_timeout_ms": 2000})
    try:
        h = {"authorization": "Bearer long"}
        _stored(c, _SERVICE.format("GET"), h)
        assert not _hit(c, _SERVICE.format("POST"), h)
        assert _hit(c, _SERVICE.format("GET").replace("migrate", "migrtae"), h)  # a typo: still the same request
    finally:
        stack.stop()


_REQUEST = "How do I send a {} request with curl and a bearer token?"


def test_a_short_prompt_with_one_swapped_term_misses_and_a_typo_in_it_hits(tmp_path: Path) -> None:
    """The cross-encoder alone scores this short GET/POST swap 0.86 (>= cross_threshold, 0.70):
    the shipped cache.cross_short_substitution_words refuses it (a named term: no near-synonym exception)."""
    stack, c = start_stack(tmp_path, {"cache.milvus.uri": str(tmp_path / "m" / "cache.db"),
                                      "cache.lookup_timeout_ms": 2000})
    try:
        h = {"authorization": "Bearer short"}
        _stored(c, _REQUEST.format("GET"), h)
        assert not _hit(c, _REQUEST.format("POST"), h)
        assert _hit(c, _REQUEST.format("GET").replace("request", "reqeust"), h)  # a typo: still the same request
        _stored(c, "How can I make my old laptop run faster?", h)
        assert _hit(c, "How can I make my old laptop run quicker?", h)  # a near-synonym: the model decides
        # "to" / "from" passes the near-synonym cosine and score: it was served the other direction's answer
        _stored(c, "How do I move files to a usb drive on mac?", h)
        assert not _hit(c, "How do I move files from a usb drive on mac?", h)
    finally:
        stack.stop()


def test_a_sibling_word_and_an_argument_swap_inside_a_short_run_miss_and_a_near_synonym_hits(tmp_path: Path) -> None:
    """Siblings pass the near-synonym cosine (0.6) and the cross-encoder's score of the two words (0.7): the answer
    for "horizontally" was served for "vertically", "prefix" for "suffix". The near-synonym model
    (cache.cross_substitution_synonym_probability, 0.6, the validation choice, default) refuses them. "http to https"
    / "https to http": the same words in another order inside one run of 3 words; both stem to "http", so the order
    veto (on by default) missed it before."""
    stack, c = start_stack(tmp_path, {"cache.milvus.uri": str(tmp_path / "m" / "cache.db"),
                                      "cache.lookup_timeout_ms": 2000})
    try:
        h = {"authorization": "Bearer siblings"}
        for q in ("How do I center a div horizontally with flexbox?", "How do I add a prefix to every line in vim?",
                  "How do I redirect http to https in nginx?", "How do I begin learning the piano as an adult?"):
            _stored(c, q, h)
        assert not _hit(c, "How do I center a div vertically with flexbox?", h)
        assert not _hit(c, "How do I add a suffix to every line in vim?", h)
        assert not _hit(c, "How do I redirect https to http in nginx?", h)
        assert _hit(c, "How do I start learning the piano as an adult?", h)  # a near-synonym: still served
    finally:
        stack.stop()


def test_looser_english_rewordings_hit_and_a_place_swap_the_model_would_serve_misses(tmp_path: Path) -> None:
    """cross_threshold 0.54 (cache13's validation choice, opt-in; the default stays 0.70): two looser rewordings the
    cross-encoder scores 0.66-0.67 are served (both missed at 0.70); two place swaps it scores 0.62-0.63, over the
    threshold, stay misses: the substitution refusal (a named word; a two-word run that is no near-synonym) decides
    them."""
    stack, c = start_stack(tmp_path, {"cache.milvus.uri": str(tmp_path / "m" / "cache.db"),
                                      "cache.lookup_timeout_ms": 2000, "cache.cross_threshold": 0.54})
    try:
        h = {"authorization": "Bearer looser"}
        _stored(c, "What causes the seasons on Earth?", h)
        _stored(c, "Why do cats purr?", h)
        assert _hit(c, "Why does Earth have seasons?", h)
        assert _hit(c, "What makes a cat purr?", h)
        assert not _hit(c, "What causes the seasons on Mars?", h)
        assert not _hit(c, "What causes the seasons on other planets?", h)
    finally:
        stack.stop()
