"""Semantic cache behaviour, on the memory backend and on Milvus Lite embedded (tmp dir)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semrouter.cache import CacheConfig, SemanticCache
from semrouter.cache.testing import HashEmbedder, completion, parse_sse, sse_stream
from semrouter.request.parse import ChatRequest

DIM = 64


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def req(text: str, model: str = "m1", history: list[dict[str, Any]] | None = None, **params: Any) -> ChatRequest:
    messages = [*(history or []), {"role": "user", "content": text}]
    body = {"model": model, "messages": messages, **params}
    return ChatRequest(body=body, model=model, messages=tuple(messages), stream=bool(params.get("stream")))


H = {"x-user-id": "alice"}


@pytest.fixture(params=["memory", "milvus"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def make(kind: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    made: list[SemanticCache] = []

    async def factory(clock: Clock | None = None, **over: Any) -> SemanticCache:
        cfg = CacheConfig.model_validate({
            # x-user-id stands for a proxy-set identity here (trusted_header); credential tenants have their own test
            "enabled": True, "backend": kind, "dimension": DIM, "similarity_threshold": 0.9, "verifier": "rules",
            "tenant_from": "trusted_header",
            "lookup_timeout_ms": 2000, **over,
            # A test's own milvus keys are merged over the test's private file (never the repo's data/ dir).
            "milvus": {"uri": str(tmp_path / "milvus" / "cache.db"), **over.get("milvus", {})},
        })
        cache = await SemanticCache.create(cfg, HashEmbedder(DIM), clock=clock or Clock(), maintenance=False)
        made.append(cache)
        return cache

    yield factory
    for c in made:
        await c.close()


async def put(cache: SemanticCache, r: ChatRequest, answer: str, headers: dict[str, str] = H,
              category: str | None = None) -> None:
    key = cache.key_for(r, headers)
    assert key is not None
    cache.store_in_background(key, category, 200, "application/json", completion(answer), has_pii=False)
    await cache.flush()


async def get(cache: SemanticCache, r: ChatRequest, headers: dict[str, str] = H,
              category: str | None = None):  # type: ignore[no-untyped-def]
    key = cache.key_for(r, headers)
    assert key is not None
    return await cache.lookup(key, category)


async def test_repeat_hits_exact_with_identical_body(make: Callable[..., Any]) -> None:
    cache = await make()
    await put(cache, req("What is the boiling point of water?"), "100 C at sea level.")
    hit = await get(cache, req("  What is the boiling   point of water?\n"))
    assert hit is not None and hit.exact and hit.similarity == 1.0
    cased = await get(cache, req("what is the BOILING point of water?"))  # case is kept: not the exact stage
    assert cased is None or not cased.exact
    assert json.loads(hit.body)["choices"][0]["message"]["content"] == "100 C at sea level."
    body, ctype = cache.render_hit(hit, stream=False, requested_model="m1")
    out = json.loads(body)
    assert ctype == "application/json" and out["id"].startswith("chatcmpl-cache-") and out["id"] != "chatcmpl-up"
    assert out["choices"][0]["message"]["content"] == "100 C at sea level."
    again = json.loads(cache.render_hit(hit, stream=False, requested_model="m1")[0])
    assert again["id"] != out["id"]


async def test_paraphrase_hits_semantically(make: Callable[..., Any]) -> None:
    cache = await make()
    await put(cache, req("How do I bake sourdough bread at home?"), "Feed a starter ...")
    hit = await get(cache, req("how can you bake sourdough bread at home"))
    assert hit is not None and not hit.exact and hit.similarity >= 0.9
    assert (await cache.stats())["counters"]["hits_semantic"] == 1


async def test_near_miss_is_rejected_by_verification(make: Callable[..., Any]) -> None:
    cache = await make(similarity_threshold=0.6)
    await put(cache, req("foods that raise blood pressure quickly"), "Salt ...")
    assert await get(cache, req("foods that lower blood pressure quickly")) is None
    assert (await cache.stats())["counters"]["rejected_verify"] == 1
    unverified = await make(similarity_threshold=0.6, verifier="off", milvus={"collection": "unverified"})
    await put(unverified, req("foods that raise blood pressure quickly"), "Salt ...")
    assert await get(unverified, req("foods that lower blood pressure quickly")) is not None


async def test_scope_tenant_model_history_params(make: Callable[..., Any]) -> None:
    cache = await make()
    history = [{"role": "system", "content": "You are terse."}]
    await put(cache, req("Name a prime number", history=history), "7")
    assert await get(cache, req("Name a prime number", history=history)) is not None
    assert await get(cache, req("Name a prime number", history=history), headers={"x-user-id": "bob"}) is None
    assert await get(cache, req("Name a prime number", history=history), headers={}) is None  # anonymous
    assert await get(cache, req("Name a prime number", model="m2", history=history)) is None
    other = [{"role": "system", "content": "You are verbose."}]
    assert await get(cache, req("Name a prime number", history=other)) is None
    assert await get(cache, req("Name a prime number", history=history, max_tokens=5)) is None
    assert await get(cache, req("Name a prime number", history=history, temperature=0.2, stream=True)) is not None


async def test_category_threshold_and_disabled_category(make: Callable[..., Any]) -> None:
    cache = await make(category_thresholds={"Math": 0.999}, disabled_categories=["health"])
    await put(cache, req("How do I bake sourdough bread at home?"), "x", category="math")
    assert await get(cache, req("how can you bake sourdough bread at home"), category=None) is not None
    cache.cfg.threshold_for("math") == 0.999  # noqa: B015
    # the paraphrase has similarity 1.0 with the hash embedder; add a word to fall under 0.999
    assert await get(cache, req("how can you bake sourdough bread at home today"), category="math") is None
    assert await get(cache, req("How do I bake sourdough bread at home?"), category="health") is None
    key = cache.key_for(req("Is salt bad?"), H)
    cache.store_in_background(key, "health", 200, "application/json", completion("y"), has_pii=False)
    await cache.flush()
    assert (await cache.stats())["counters"]["store_skipped_category"] == 1


async def test_expired_entries_are_never_served_and_get_purged(make: Callable[..., Any]) -> None:
    clock = Clock()
    cache = await make(clock=clock, ttl_seconds=10)
    await put(cache, req("What is the tallest mountain?"), "Everest")
    assert await get(cache, req("What is the tallest mountain?")) is not None
    clock.now += 11
    assert await get(cache, req("What is the tallest mountain?")) is None
    assert await get(cache, req("what is the tallest mountain please")) is None
    assert (await cache.maintain())["purged"] == 1
    assert (await cache.stats())["entries"] == 0


@pytest.mark.parametrize("policy", ["fifo", "lru"])
async def test_max_entries_eviction(make: Callable[..., Any], policy: str) -> None:
    clock = Clock()
    cache = await make(clock=clock, max_entries=3, eviction=policy)
    for i, word in enumerate(["alpha", "bravo", "charlie", "delta"]):
        clock.now += 1
        await put(cache, req(f"tell me about {word}"), word)
        if i == 2:
            clock.now += 1
            assert await get(cache, req("tell me about alpha")) is not None  # alpha used recently
    assert (await cache.maintain())["evicted"] == 1
    assert (await cache.stats())["entries"] == 3
    alpha = await get(cache, req("tell me about alpha"))
    bravo = await get(cache, req("tell me about bravo"))
    if policy == "fifo":
        assert alpha is None and bravo is not None
    else:
        assert alpha is not None and bravo is None


async def test_sse_answer_is_assembled_and_replayed_as_valid_sse(make: Callable[..., Any]) -> None:
    cache = await make()
    usage = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    key = cache.key_for(req("Say hello to the world", stream=True), H)
    long_tail = " and more" * 20
    stream = sse_stream(["Hello", ", ", "world", "!" + long_tail], finish_reason="stop", usage=usage)
    cache.store_in_background(key, None, 200, "text/event-stream; charset=utf-8", stream, has_pii=False)
    await cache.flush()
    hit = await get(cache, req("Say hello to the world"))
    assert hit is not None
    stored = json.loads(hit.body)
    assert stored["object"] == "chat.completion"
    assert stored["choices"][0]["message"]["content"] == "Hello, world!" + long_tail
    assert stored["choices"][0]["finish_reason"] == "stop" and stored["usage"] == usage
    body, ctype = cache.render_hit(hit, stream=True, requested_model="m1")
    assert ctype == "text/event-stream"
    events, done = parse_sse(body)
    assert done
    assert len({e["id"] for e in events}) == 1 and events[0]["id"].startswith("chatcmpl-cache-")
    assert all(e["object"] == "chat.completion.chunk" for e in events)
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert text == "Hello, world!" + long_tail
    assert len([e for e in events if e["choices"] and e["choices"][0]["delta"].get("content")]) > 2
    finish = [e["choices"][0]["finish_reason"] for e in events if e["choices"] and e["choices"][0]["finish_reason"]]
    assert finish == ["stop"]
    assert events[-1]["choices"] == [] and events[-1]["usage"] == usage
    json_body, _ = cache.render_hit(hit, stream=False, requested_model="m1")
    assert json.loads(json_body)["usage"] == usage


@pytest.mark.parametrize("status,ctype,body,pii,reason", [
    (500, "application/json", completion("boom"), False, "store_skipped_status"),
    (200, "text/event-stream", sse_stream(["Hel"], finish_reason=None, done=False), False,
     "store_skipped_incomplete"),
    (200, "text/event-stream", sse_stream(["Hel", "lo"], finish_reason="stop", done=False), False,
     "store_skipped_incomplete"),
    (200, "text/event-stream", sse_stream(["Hel"], finish_reason=None, done=True), False,
     "store_skipped_incomplete"),
    (200, "application/json", b'{"error": {"message": "overloaded"}}', False, "store_skipped_incomplete"),
    (200, "application/json", completion("my ssn is ..."), True, "store_skipped_pii"),
])
async def test_bad_answers_are_not_stored(make: Callable[..., Any], status: int, ctype: str, body: bytes,
                                          pii: bool, reason: str) -> None:
    cache = await make()
    key = cache.key_for(req("Count to three"), H)
    cache.store_in_background(key, None, status, ctype, body, has_pii=pii)
    await cache.flush()
    stats = await cache.stats()
    assert stats["counters"].get(reason) == 1 and stats["entries"] == 0
    assert await get(cache, req("Count to three")) is None


async def test_opt_outs_give_no_key(make: Callable[..., Any]) -> None:
    cache = await make(skip_tools=True, max_temperature=0.5, allow_anonymous=False)
    r = req("Hi there", temperature=0.2)
    assert cache.key_for(r, H) is not None
    assert cache.key_for(r, {**H, "cache-control": "no-store"}) is None
    assert cache.key_for(r, {**H, "cache-control": "max-age=0, no-cache"}) is None
    assert cache.key_for(r, {**H, "x-semrouter-cache": "bypass"}) is None
    assert cache.key_for(r, {}) is None  # no tenant, anonymous not allowed
    assert cache.key_for(req("Hi there", temperature=0.9), H) is None
    assert cache.key_for(req("Hi there"), H) is None  # missing temperature counts as 1.0
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert cache.key_for(req("Hi there", temperature=0, tools=tools), H) is None
    assert cache.key_for(req("Hi there", temperature=0, n=2), H) is None
    assert cache.key_for(req("Hi there", temperature=0, history=[{"role": "user", "content": "x"}]), H) is not None
    tool_turn = ChatRequest(body={}, model="m1", messages=({"role": "tool", "content": "42",
                                                             "tool_call_id": "c1"},), stream=False)
    assert cache.key_for(tool_turn, H) is None
    disabled = await make(enabled=False, milvus={"collection": "off"})
    assert disabled.key_for(r, H) is None


async def test_authorization_hash_tenant(make: Callable[..., Any]) -> None:
    cache = await make(tenant_from="authorization_hash")
    await put(cache, req("What is 2+2?"), "4", headers={"authorization": "Bearer key-a"})
    assert await get(cache, req("What is 2+2?"), headers={"authorization": "Bearer key-a"}) is not None
    assert await get(cache, req("What is 2+2?"), headers={"authorization": "Bearer key-b"}) is None
    key = cache.key_for(req("x"), {"authorization": "Bearer key-a"})
    assert "key-a" not in key.tenant


async def test_management_list_inspect_delete_clear(make: Callable[..., Any]) -> None:
    cache = await make()
    await put(cache, req("first question here"), "1")
    await put(cache, req("second question here"), "2", headers={"x-user-id": "bob"})
    await put(cache, req("third question here", model="m2"), "3")
    rows = await cache.list_entries()
    assert len(rows) == 3 and all("body" not in r for r in rows)
    assert {r["tenant"] for r in await cache.list_entries(tenant="t:bob")} == {"t:bob"}
    one = rows[0]["id"]
    detail = await cache.inspect(one)
    assert detail is not None and "choices" in detail["body"]
    assert await cache.delete(entry_id=one) == 1 and await cache.inspect(one) is None
    assert await cache.delete(model="m2") in (0, 1)
    with pytest.raises(ValueError):
        await cache.delete()
    left = (await cache.stats())["entries"]
    assert await cache.clear() == left and (await cache.stats())["entries"] == 0


async def test_slow_backend_fails_open_within_timeout(make: Callable[..., Any]) -> None:
    cache = await make(lookup_timeout_ms=50)

    async def slow(*a: Any, **k: Any) -> Any:
        await asyncio.sleep(5)

    cache.backend.find_exact = slow  # type: ignore[method-assign]
    t = time.perf_counter()
    assert await get(cache, req("anything at all")) is None
    assert time.perf_counter() - t < 0.5
    for _ in range(2):
        await get(cache, req("anything at all"))
    stats = await cache.stats()
    assert stats["counters"]["lookup_timeouts"] == 3 and not stats["backend_up"]
    t = time.perf_counter()
    assert await get(cache, req("anything at all")) is None  # breaker open: no backend call at all
    assert time.perf_counter() - t < 0.01
    assert (await cache.stats())["counters"]["skipped_backend_down"] == 1


async def test_backend_returns_stored_vectors_for_the_verifier(make: Callable[..., Any]) -> None:
    cache = await make()
    await put(cache, req("how do I sort a dict by value"), "use sorted(d.items(), key=...)")
    [entry] = await cache.list_entries()
    got = await cache.backend.vectors([entry["id"], "no-such-id"])
    assert set(got) == {entry["id"]}
    expected = HashEmbedder(DIM).vector("how do I sort a dict by value")
    assert float(np.dot(got[entry["id"]], expected)) == pytest.approx(1.0, abs=1e-4)


async def test_embedded_milvus_survives_restart_through_the_mirror(tmp_path: Path) -> None:
    """Milvus Lite is the durable store; a new router process loads its in-memory copy from it."""
    cfg = CacheConfig.model_validate({
        "enabled": True, "backend": "milvus", "dimension": DIM, "similarity_threshold": 0.9, "verifier": "rules",
        "lookup_timeout_ms": 2000, "milvus": {"uri": str(tmp_path / "m" / "cache.db")}, "tenant_from": "trusted_header",
    })
    first = await SemanticCache.create(cfg, HashEmbedder(DIM), clock=Clock(), maintenance=False)
    assert type(first.backend).__name__ == "MirroredBackend"
    await put(first, req("what is the tallest tree species"), "coast redwood")
    await first.close()
    second = await SemanticCache.create(cfg, HashEmbedder(DIM), clock=Clock(), maintenance=False)
    try:
        hit = await get(second, req("what is the tallest tree species"))
        assert hit is not None and b"coast redwood" in hit.body
        assert await second.delete(tenant="t:alice") == 1
    finally:
        await second.close()
    third = await SemanticCache.create(cfg, HashEmbedder(DIM), clock=Clock(), maintenance=False)
    try:
        assert await get(third, req("what is the tallest tree species")) is None  # the delete reached the file
    finally:
        await third.close()


async def test_backend_marked_down_mid_run_is_reconnected_by_the_maintenance_loop() -> None:
    """The breaker can open long after start-up; the maintenance loop must notice within a second or so."""
    from semrouter.cache.backend_memory import MemoryBackend
    from semrouter.cache.types import CacheBackendError

    class Flaky(MemoryBackend):
        failing = False
        reconnects = 0

        async def find_exact(self, scope, prompt_hash, now):  # type: ignore[no-untyped-def]
            if self.failing:
                raise CacheBackendError("connection reset")
            return await super().find_exact(scope, prompt_hash, now)

        async def reconnect(self) -> None:
            self.reconnects += 1
            self.failing = False

    backend = Flaky(DIM)
    cfg = CacheConfig.model_validate({"enabled": True, "backend": "memory", "dimension": DIM, "verifier": "rules",
                                      "purge_interval_seconds": 3600, "reconnect_initial_seconds": 0.2})
    cache = await SemanticCache.create(cfg, HashEmbedder(DIM), backend=backend)
    try:
        await put(cache, req("how many moons does mars have"), "two")
        backend.failing = True
        for _ in range(3):
            assert await get(cache, req("how many moons does mars have")) is None
        assert (await cache.stats())["backend_up"] is False
        deadline = time.monotonic() + 5
        while not (await cache.stats())["backend_up"] and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert backend.reconnects >= 1
        hit = await get(cache, req("how many moons does mars have"))
        assert hit is not None and b"two" in hit.body
    finally:
        await cache.close()
