"""Hostile input in both directions for the Responses and Messages APIs: seeded random corruptions of
client bodies and of upstream answers (no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_apis import EFFORT, TEMPLATE, _completion

from semrouter.cache.config import CacheConfig
from semrouter.cache.keys import make_key
from semrouter.config.schema import SystemPrompt
from semrouter.request import apis
from semrouter.request.errors import RequestError
from semrouter.response import anthropic as anthropic_out
from semrouter.response import apis as replies
from semrouter.response import responses_api as responses_out


_ODD: list[Any] = [None, 0, -1, 1.5, True, "", "x", [], {}, [{}], [None], {"type": 5}, {"type": "text"},
                   [{"type": "input_text", "text": 3}], [{"type": "text", "text": "t"}], {"effort": 3},
                   [{"type": "tool_result", "tool_use_id": "t", "content": {"a": 1}}],
                   [{"type": "function_call_output", "call_id": "c", "output": None}]]
_VALID = {
    "responses": {"model": "auto", "instructions": "be brief", "reasoning": {"effort": "low"}, "stream": False,
                  "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
                            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
                            {"type": "function_call_output", "call_id": "c", "output": "ok"}]},
    "messages": {"model": "auto", "max_tokens": 100, "system": [{"type": "text", "text": "s"}],
                 "thinking": {"type": "enabled", "budget_tokens": 2000},
                 "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                              {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f",
                                                                 "input": {}}]},
                              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]},
}


def _mutations(value: Any, rng: Any, depth: int = 0) -> Any:
    """`value` with one randomly chosen node (at any depth) replaced by an odd JSON value."""
    if depth > 4 or not isinstance(value, (dict, list)) or not value or rng.random() < 0.3:
        return rng.choice(_ODD)
    out = dict(value) if isinstance(value, dict) else list(value)
    key = rng.choice(list(out)) if isinstance(out, dict) else rng.randrange(len(out))
    out[key] = _mutations(out[key], rng, depth + 1)
    return out


@pytest.mark.parametrize("api", ["responses", "messages"])
def test_hostile_bodies_get_a_400_or_a_request_that_works(api: str) -> None:
    """Seeded random corruptions of a valid body: parse answers RequestError (4xx) or a request whose rewrite,
    cache key and classified text all work; never another exception (which would be a 500)."""
    import random

    rng = random.Random(16)
    cfg = CacheConfig()
    outcomes = {"refused": 0, "accepted": 0}
    for _ in range(1500):
        body = _mutations(_VALID[api], rng)
        try:
            req = apis.parse(api, json.dumps(body).encode(), 1_000_000)  # type: ignore[arg-type]
        except RequestError as e:
            assert 400 <= e.status < 500
            outcomes["refused"] += 1
            continue
        outcomes["accepted"] += 1
        for model in (EFFORT, TEMPLATE):
            json.loads(apis.rewrite(req, model, True, SystemPrompt(text="p", mode="insert")))
        make_key(cfg, req, {"authorization": "Bearer u"})
        for which in ("last_user", "all_user", "conversation"):
            assert isinstance(req.text_for(which), str)  # type: ignore[arg-type]
    assert outcomes["refused"] > 100 and outcomes["accepted"] > 100, outcomes


@pytest.mark.parametrize("api", ["responses", "messages"])
def test_odd_upstream_answers_are_read_or_refused_never_raise(api: str) -> None:
    """The observer reads whatever an upstream sends: a corrupted answer (JSON or SSE) is an answer or None."""
    import random

    rng = random.Random(17)
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]
    valid = json.loads(replies.render(api, _completion(reasoning_content="r", tool_calls=calls), False, "m")[0])
    for _ in range(1500):
        body = _mutations(valid, rng)
        for stream in (False, True):
            if stream:
                if not isinstance(body, dict):
                    continue
                wire = (responses_out.sse(body) if api == "responses" else anthropic_out.sse(body)) \
                    if _renders(api, body) else json.dumps(body).encode()
                out = replies.to_completion(api, "text/event-stream", wire)  # type: ignore[arg-type]
            else:
                out = replies.to_completion(api, "application/json", json.dumps(body).encode())  # type: ignore[arg-type]
            if out is None:
                continue
            assert out["choices"][0]["finish_reason"] in ("stop", "length", "tool_calls", "content_filter")
            stored = json.loads(json.dumps(out))  # what the cache keeps; a hit must replay it in both shapes
            replies.render(api, stored, False, "m")  # type: ignore[arg-type]
            replies.render(api, stored, True, "m")  # type: ignore[arg-type]


def _renders(api: str, body: dict[str, Any]) -> bool:
    try:
        (responses_out.sse if api == "responses" else anthropic_out.sse)(body)
        return True
    except Exception:  # a corrupted object our own renderer cannot write: send it as one data line instead
        return False
