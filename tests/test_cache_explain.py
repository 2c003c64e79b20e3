"""Why a candidate is refused: judge verdicts, miss reasons, explain, and the one log line per rejection."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import structlog

from semrouter.cache import SemanticCache
from semrouter.cache.backend_memory import MemoryBackend
from semrouter.cache.config import CacheConfig
from semrouter.cache.judge import MISS_REASONS
from semrouter.cache.testing import HashEmbedder, completion, user_request
from semrouter.telemetry.metrics import Metrics


req = user_request


async def make(**cfg: Any) -> SemanticCache:
    c = CacheConfig(enabled=True, backend="memory", dimension=64, verifier="rules", similarity_threshold=0.5,
                    fallback_similarity_threshold=0.5, **cfg)
    return await SemanticCache.create(c, HashEmbedder(64), backend=MemoryBackend(64), maintenance=False)


async def put(cache: SemanticCache, text: str) -> None:
    key = cache.key_for(req(text), {})
    assert key is not None
    cache.store_in_background(key, None, 200, "application/json", completion(f"re: {text}"), False)
    await cache.flush()


@pytest.mark.parametrize("cached,asked,reason", [
    ("Is coffee bad for your health?", "Is coffee not bad for your health?", "negation"),
    ("How do I copy files from my server to my laptop?", "How do I copy files from my laptop to my server?",
     "direction"),
    ("Convert 5 miles to kilometers", "Convert 8 miles to kilometers", "numbers"),
    ("What does `x + 1` return?", "What does `x - 1` return?", "verbatim"),
    ("Tell me about cats", "Explain quantum chromodynamics", "below_threshold"),
])
async def test_miss_reason_and_explain_agree(cached: str, asked: str, reason: str) -> None:
    cache = await make()
    try:
        await put(cache, cached)
        key = cache.key_for(req(asked), {})
        hit, why = await cache.lookup_with_reason(key, None)
        assert hit is None and why == reason
        out = await cache.explain(key)
        assert out["verdict"] == "miss" and out["reason"] == reason and out["stage"] == "semantic"
        json.dumps(out)  # JSON-ready for the CLI and the admin API
        if reason != "below_threshold":
            (cand,) = out["candidates"]
            assert cand["veto"] == reason and cand["verdict"] == "rejected" and cand["prompt"] == cached
        assert (await cache.stats())["counters"][f"miss_{reason}"] == 1
    finally:
        await cache.close()


async def test_explain_of_a_repeat_is_an_exact_hit_and_counts_nothing() -> None:
    cache = await make()
    try:
        await put(cache, "What is the capital of France?")
        before = dict((await cache.stats())["counters"])
        out = await cache.explain(cache.key_for(req("What is the capital of France?"), {}))
        assert out["verdict"] == "hit" and out["stage"] == "exact" and out["candidates"][0]["cosine"] == 1.0
        assert (await cache.stats())["counters"] == before
    finally:
        await cache.close()


async def test_empty_scope_is_no_candidates() -> None:
    cache = await make()
    try:
        _, why = await cache.lookup_with_reason(cache.key_for(req("anything at all here"), {}), None)
        assert why == "no_candidates"
    finally:
        await cache.close()


async def test_one_info_line_per_rejection_without_prompt_text() -> None:
    cache = await make()
    saved = structlog.get_config()["wrapper_class"]
    # another test may have configured a warning-level logger (configure_logging): info must get through here
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        await put(cache, "Is the secret project Zebra bad for the budget?")
        with structlog.testing.capture_logs() as logs:
            await cache.lookup(cache.key_for(req("Is the secret project Zebra not bad for the budget?"), {}), None)
        lines = [e for e in logs if e["event"] == "cache candidate rejected"]
        assert len(lines) == 1 and lines[0]["log_level"] == "info" and lines[0]["reason"] == "negation"
        assert "zebra" not in json.dumps(lines[0], default=str).lower()
    finally:
        structlog.configure(wrapper_class=saved)
        await cache.close()


def test_miss_reason_metric_has_a_closed_label_set() -> None:
    m = Metrics()
    m.record_cache_miss("negation")
    m.record_cache_miss("some label an attacker chose")
    samples = {s.labels["reason"]: s.value for metric in m.registry.collect()
               if metric.name == "semrouter_cache_miss_reasons" for s in metric.samples if s.name.endswith("_total")}
    assert set(samples) == set(MISS_REASONS)
    assert samples["negation"] == 1 and samples["error"] == 1
