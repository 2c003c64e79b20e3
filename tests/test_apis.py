"""The Responses and Messages APIs in one internal model: conversion, rewrite, answers and errors (no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from semrouter.cache.config import CacheConfig
from semrouter.cache.keys import make_key
from semrouter.config.schema import Model, SystemPrompt
from semrouter.request import anthropic, apis, responses_api
from semrouter.request.errors import RequestError
from semrouter.response import anthropic as anthropic_out
from semrouter.response import apis as replies
from semrouter.response import openai
from semrouter.response import responses_api as responses_out

EFFORT = Model.model_validate({"name": "o-mini", "endpoints": [{"address": "127.0.0.1", "port": 1}],
                               "reasoning_family": {"type": "reasoning_effort", "effort": "high"}})
TEMPLATE = Model.model_validate({"name": "qwen", "endpoints": [{"address": "127.0.0.1", "port": 1}],
                                 "reasoning_family": {"type": "chat_template_kwargs"}})


def _parse(api: str, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    return apis.parse(api, json.dumps(body).encode(), 1_000_000)  # type: ignore[arg-type]


def _bad(api: str, body: dict[str, Any] | bytes) -> RequestError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(RequestError) as e:
        apis.parse(api, raw, 1_000_000)  # type: ignore[arg-type]
    assert e.value.status == 400
    return e.value


# -- requests -------------------------------------------------------------------------------------------------

def test_responses_string_input_and_instructions_become_messages() -> None:
    req = _parse("responses", {"model": "auto", "input": "What is an integral?", "instructions": "Be brief.",
                               "max_output_tokens": 50, "stream": True})
    assert req.api == "responses" and req.stream and req.model == "auto"
    assert req.messages == ({"role": "system", "content": "Be brief."},
                            {"role": "user", "content": "What is an integral?"})
    assert req.last_user_text == "What is an integral?"
    assert "input" not in req.body and "instructions" not in req.body and req.body["max_output_tokens"] == 50
    assert req.source is not None and req.source["input"] == "What is an integral?"


def test_responses_items_keep_turns_tools_and_images() -> None:
    req = _parse("responses", {"model": "auto", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "weather?"},
                                     {"type": "input_image", "image_url": "https://x/y.png"}]},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and tomorrow?"}]},
    ]})
    roles = [m["role"] for m in req.messages]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]
    assert req.messages[0]["content"][1] == {"type": "image_url",
                                             "image_url": {"url": "https://x/y.png", "detail": "auto"}}
    assert req.messages[1]["tool_calls"][0]["id"] == "c1" and req.messages[2]["tool_call_id"] == "c1"
    assert req.last_user_text == "and tomorrow?"
    assert req.text_for("all_user") == "weather?\nand tomorrow?"


@pytest.mark.parametrize("body,param", [
    ({"input": "hi"}, "model"),
    ({"model": "auto"}, "input"),
    ({"model": "auto", "input": []}, "input"),
    ({"model": "auto", "input": 5}, "input"),
    ({"model": "auto", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ({"model": "auto", "input": [{"role": "user", "content": [{"type": "input_text"}]}]}, "input[0].content"),
    ({"model": "auto", "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
    ({"model": "auto", "input": "hi", "stream": "yes"}, "stream"),
    ({"model": "auto", "input": "hi", "reasoning": "high"}, "reasoning"),
    ({"model": "auto", "input": "hi", "max_output_tokens": 1.5}, "max_output_tokens"),
    ({"model": "auto", "input": "hi", "instructions": ["x"]}, "instructions"),
])
def test_responses_bad_fields_name_the_param(body: dict[str, Any], param: str) -> None:
    assert _bad("responses", body).param == param


def test_messages_system_blocks_tools_and_thinking_blocks() -> None:
    req = _parse("messages", {"model": "auto", "max_tokens": 100, "system": [{"type": "text", "text": "Be kind."}],
                              "messages": [
        {"role": "user", "content": "Find the weather"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "secret", "signature": "s"},
                                          {"type": "tool_use", "id": "t1", "name": "w", "input": {"c": "Oslo"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "rain"},
                                     {"type": "text", "text": "Summarise it"}]},
    ]})
    assert req.api == "messages"
    assert [m["role"] for m in req.messages] == ["system", "user", "assistant", "tool", "user"]
    assert req.messages[0]["content"] == "Be kind."
    assert req.messages[2]["tool_calls"][0]["function"] == {"name": "w", "arguments": '{"c": "Oslo"}'}
    assert "secret" not in json.dumps(req.messages)  # thinking text is neither classified nor part of the scope
    assert req.last_user_text == "Summarise it"
    assert "system" not in req.body and req.body["max_tokens"] == 100


@pytest.mark.parametrize("body,param", [
    ({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
    ({"model": "auto", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
    ({"model": "auto", "max_tokens": 5, "messages": []}, "messages"),
    ({"model": "auto", "max_tokens": 5, "messages": [{"role": "system", "content": "hi"}]}, "messages.0.role"),
    ({"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text"}]}]},
     "messages.0.content.0.text"),
    ({"model": "auto", "max_tokens": 5, "system": 3, "messages": [{"role": "user", "content": "x"}]}, "system"),
    ({"model": "auto", "max_tokens": 5, "thinking": True, "messages": [{"role": "user", "content": "x"}]}, "thinking"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
])
def test_messages_bad_fields_name_the_param(body: dict[str, Any], param: str) -> None:
    assert _bad("messages", body).param == param


@pytest.mark.parametrize("api", ["responses", "messages"])
def test_not_json_and_not_an_object_are_400_and_oversize_is_413(api: str) -> None:
    assert _bad(api, b'{"model": "auto", ').code == "invalid_json"
    assert _bad(api, b"[1, 2]").code == "invalid_value"
    assert _bad(api, b"[" * 100_000 + b"]" * 100_000).code == "invalid_json"
    with pytest.raises(RequestError) as e:
        apis.parse(api, b"x" * 2000, 1024)  # type: ignore[arg-type]
    assert e.value.status == 413


# -- rewrite --------------------------------------------------------------------------------------------------

def test_responses_rewrite_model_effort_and_instructions() -> None:
    req = _parse("responses", {"model": "auto", "input": "hi", "instructions": "Mine.",
                               "reasoning": {"effort": "low", "summary": "auto"}})
    sp = SystemPrompt(text="Router's.", mode="insert")
    out = json.loads(apis.rewrite(req, EFFORT, True, sp))
    assert out["model"] == "o-mini" and out["input"] == "hi"
    assert out["reasoning"] == {"effort": "high", "summary": "auto"}
    assert out["instructions"] == "Router's.\n\nMine."
    off = json.loads(apis.rewrite(req, EFFORT, False, SystemPrompt(text="R.", mode="replace")))
    assert off["reasoning"] == {"summary": "auto"} and off["instructions"] == "R."
    kw = json.loads(apis.rewrite(req, TEMPLATE, True, None))
    assert kw["chat_template_kwargs"] == {"enable_thinking": True} and kw["reasoning"]["effort"] == "low"
    untouched = json.loads(apis.rewrite(req, EFFORT, None, None))
    assert untouched["reasoning"] == {"effort": "low", "summary": "auto"} and untouched["instructions"] == "Mine."


def test_messages_rewrite_thinking_budget_and_system() -> None:
    body = {"model": "auto", "max_tokens": 8000, "system": [{"type": "text", "text": "Mine."}],
            "messages": [{"role": "user", "content": "hi"}]}
    out = json.loads(apis.rewrite(_parse("messages", body), EFFORT, True, SystemPrompt(text="R.", mode="insert")))
    assert out["model"] == "o-mini"
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 7999}  # high = 16384, kept below max_tokens
    assert out["system"] == [{"type": "text", "text": "R."}, {"type": "text", "text": "Mine."}]
    small = json.loads(apis.rewrite(_parse("messages", dict(body, max_tokens=500)), TEMPLATE, True, None))
    assert small["thinking"] == {"type": "disabled"}  # no room for the 1024-token minimum budget
    off = json.loads(apis.rewrite(_parse("messages", body), TEMPLATE, False, SystemPrompt(text="R.", mode="replace")))
    assert off["thinking"] == {"type": "disabled"} and off["system"] == "R."
    assert json.loads(apis.rewrite(_parse("messages", dict(body, max_tokens=20000)), TEMPLATE, True, None)
                      )["thinking"] == {"type": "enabled", "budget_tokens": 4096}


# -- answers --------------------------------------------------------------------------------------------------

def _completion(**msg: Any) -> dict[str, Any]:
    obj = openai.completion("m1", "x " * 50, usage={"prompt_tokens": 7, "completion_tokens": 50, "total_tokens": 57})
    obj["choices"][0]["message"].update(msg)
    return obj


def _events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.decode().strip().split("\n\n"):
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: ")
        data = json.loads(lines[1][6:])
        assert data["type"] == lines[0][7:]
        out.append((data["type"], data))
    return out


def test_responses_render_json_and_sse_round_trip() -> None:
    obj = _completion()
    body, ctype = replies.render("responses", obj, False, "m1")
    resp = json.loads(body)
    assert ctype == "application/json" and resp["object"] == "response" and resp["status"] == "completed"
    assert resp["output"][0]["content"][0] == {"type": "output_text", "text": "x " * 50, "annotations": [],
                                               "logprobs": []}
    assert resp["usage"]["input_tokens"] == 7 and resp["usage"]["total_tokens"] == 57
    sse, ctype = replies.render("responses", obj, True, "m1")
    events = _events(sse)
    names = [n for n, _ in events]
    assert ctype == "text/event-stream"
    assert names[:2] == ["response.created", "response.in_progress"] and names[-1] == "response.completed"
    assert [e["sequence_number"] for _, e in events] == list(range(len(events)))
    deltas = [e["delta"] for n, e in events if n == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == "x " * 50
    back = replies.to_completion("responses", "text/event-stream", sse)
    assert back is not None and back["choices"][0]["message"]["content"] == "x " * 50
    assert back["usage"] == obj["usage"] and back["id"].startswith("resp_")
    assert replies.to_completion("responses", "application/json", body)["choices"][0]["finish_reason"] == "stop"


def test_responses_tool_calls_refusals_and_incomplete() -> None:
    calls = [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]
    obj = _completion(content=None, tool_calls=calls)
    obj["choices"][0]["finish_reason"] = "tool_calls"
    resp = responses_out.response_object(obj, "m1")
    assert [i["type"] for i in resp["output"]] == ["function_call"] and resp["output"][0]["call_id"] == "call_1"
    back = responses_out.to_completion("application/json", json.dumps(resp).encode())
    assert back["choices"][0]["message"]["tool_calls"] == calls and back["choices"][0]["finish_reason"] == "tool_calls"
    cut = _completion()
    cut["choices"][0]["finish_reason"] = "content_filter"
    sse, _ = replies.render("responses", cut, True, "m1")
    final = _events(sse)[-1]
    assert final[0] == "response.incomplete"
    assert final[1]["response"]["incomplete_details"] == {"reason": "content_filter"}


def test_responses_incomplete_streams_and_failures_are_not_answers() -> None:
    sse, _ = replies.render("responses", _completion(), True, "m1")
    cut = sse.rsplit(b"event: response.completed", 1)[0]
    assert replies.to_completion("responses", "text/event-stream", cut) is None
    failed = responses_out.response_object(_completion(), "m1") | {"status": "failed"}
    assert replies.to_completion("responses", "application/json", json.dumps(failed).encode()) is None
    assert replies.to_completion("responses", "application/json", b'{"error": {"message": "x"}}') is None


def test_messages_render_json_and_sse_round_trip() -> None:
    obj = _completion(reasoning_content="think " * 20, thinking_signature="sig")
    body, _ = replies.render("messages", obj, False, "m1")
    msg = json.loads(body)
    assert msg["type"] == "message" and msg["stop_reason"] == "end_turn" and msg["model"] == "m1"
    assert [b["type"] for b in msg["content"]] == ["thinking", "text"] and msg["content"][0]["signature"] == "sig"
    assert msg["usage"] == {"input_tokens": 7, "output_tokens": 50}
    sse, ctype = replies.render("messages", obj, True, "m1")
    names = [n for n, _ in _events(sse)]
    assert ctype == "text/event-stream"
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == 2 and names.count("content_block_stop") == 2
    back = replies.to_completion("messages", "text/event-stream", sse)
    assert back is not None
    m = back["choices"][0]["message"]
    assert m["content"] == "x " * 50 and m["reasoning_content"] == "think " * 20 and m["thinking_signature"] == "sig"
    assert back["usage"]["completion_tokens"] == 50 and back["usage"]["prompt_tokens"] == 7
    assert replies.to_completion("messages", "text/event-stream", sse.rsplit(b"event: message_stop", 1)[0]) is None


def test_messages_tool_use_and_refusal() -> None:
    calls = [{"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]
    obj = _completion(content=None, tool_calls=calls)
    obj["choices"][0]["finish_reason"] = "tool_calls"
    sse, _ = replies.render("messages", obj, True, "m1")
    back = replies.to_completion("messages", "text/event-stream", sse)
    assert back["choices"][0]["finish_reason"] == "tool_calls"
    assert json.loads(back["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == {"a": 1}
    refusal = openai.completion("m1", "no", finish_reason="content_filter")
    assert anthropic_out.message_object(refusal, "m1")["stop_reason"] == "refusal"


def test_error_shapes_follow_the_api() -> None:
    a = json.loads(replies.error_body("messages", 400, "max_tokens: Field required", "invalid_request_error", "x"))
    assert a == {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"}}
    assert json.loads(replies.error_body("messages", 403, "no", "t", "c"))["error"]["type"] == "permission_error"
    assert json.loads(replies.error_body("messages", 500, "no", "t", "c"))["error"]["type"] == "api_error"
    o = json.loads(replies.error_body("responses", 400, "bad", "invalid_request_error", "invalid_value", "input"))
    assert o == {"error": {"message": "bad", "type": "invalid_request_error", "param": "input",
                           "code": "invalid_value"}}


# -- cache scope ----------------------------------------------------------------------------------------------

def test_each_api_has_its_own_cache_scope() -> None:
    cfg = CacheConfig()
    h = {"authorization": "Bearer sk-alice"}
    chat = apis.parse("chat", json.dumps({"model": "auto", "messages": [{"role": "user", "content": "Hi there"}]}
                                         ).encode(), 10_000)
    resp = _parse("responses", {"model": "auto", "input": "Hi there"})
    resp2 = _parse("responses", {"model": "auto", "input": [{"role": "user", "content": "Hi there"}],
                                 "stream": True})
    msgs = _parse("messages", {"model": "auto", "max_tokens": 1024,
                               "messages": [{"role": "user", "content": "Hi there"}]})
    keys = [make_key(cfg, r, h) for r in (chat, resp, resp2, msgs)]
    assert all(k is not None for k in keys)
    assert keys[0].prompt_hash == keys[1].prompt_hash == keys[3].prompt_hash
    scopes = [(k.context_hash, k.params_hash) for k in keys]
    assert scopes[1] == scopes[2]  # string input and one user item, streamed or not: the same question
    assert len({scopes[0], scopes[1], scopes[3]}) == 3
    follow = _parse("responses", {"model": "auto", "input": "Hi there", "previous_response_id": "resp_1"})
    assert make_key(cfg, follow, h).params_hash != keys[1].params_hash  # upstream state is part of the scope
    tool_turn = _parse("messages", {"model": "auto", "max_tokens": 9, "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}]}]})
    assert make_key(cfg, tool_turn, h) is None  # the last turn is a tool result, not a user question


def test_thinking_budget_table_matches_effort_levels() -> None:
    assert anthropic.THINKING_BUDGET.keys() == {"low", "medium", "high"}
    assert min(anthropic.THINKING_BUDGET.values()) == anthropic.MIN_THINKING_BUDGET
    assert responses_api.parse({"model": "a", "input": "x"}).api == "responses"


def test_path_models_config_names_the_key_and_the_fix() -> None:
    from semrouter.config import parse_config

    base = {"routing": {"default_model": "m"}, "models": [{"name": "m", "endpoints": [{"address": "h", "port": 1}]}]}
    with pytest.raises(ValueError, match=r"routing.path_models\['/v1/embeddings'\]: 'nope' is not a configured model"):
        parse_config({**base, "routing": {"default_model": "m", "path_models": {"/v1/embeddings": "nope"}}})
    for bad in ("embeddings", "/v1/x?y=1", "//v1/x"):
        with pytest.raises(ValueError, match="use an absolute path without a query"):
            parse_config({**base, "routing": {"default_model": "m", "path_models": {bad: "m"}}})
    assert parse_config({**base, "routing": {"default_model": "m", "path_models": {"/health": "m"}}})  # any path
    cfg = parse_config({**base, "routing": {"default_model": "m", "path_models": {"/v1/audio/": "m"}}})
    from semrouter.server.paths import model_for_path
    assert model_for_path(cfg, "/v1/audio/speech") == "m" and model_for_path(cfg, "/v1/audio") is None


def test_path_models_refuses_a_model_whose_pii_policy_it_cannot_apply() -> None:
    """The router does not read a path_models body for PII (review15: with the e2e stack's
    `/v1/embeddings: qwen3-32b`, an SSN reached qwen3-32b through /v1/embeddings while the same text in a chat
    request for it got 403 pii_not_allowed): a restrictive pii_policy on such a path is a config error."""
    from semrouter.config import parse_config

    strict = {"name": "s", "endpoints": [{"address": "h", "port": 2}],
              "pii_policy": {"allow_by_default": False, "allowed_types": ["EMAIL_ADDRESS"]}}
    base = {"routing": {"default_model": "m"},
            "models": [{"name": "m", "endpoints": [{"address": "h", "port": 1}]}, strict]}
    with pytest.raises(ValueError, match=r"routing.path_models\['/v1/embeddings'\]: 's' has a restrictive pii_policy"
                       r".*allow_by_default: true"):
        parse_config({**base, "routing": {"default_model": "m", "path_models": {"/v1/embeddings": "s"}}})
    assert parse_config({**base, "routing": {"default_model": "m", "path_models": {"/v1/embeddings": "m"}}})


def _shipped_envoy_configs() -> dict[str, dict[str, Any]]:
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parent.parent
    out = {p: yaml.safe_load((root / p).read_text())
           for p in ("envoy/envoy.yaml", "envoy/envoy-original-dst.yaml", "deploy/envoy-compose.yaml")}
    for doc in yaml.safe_load_all((root / "deploy/k8s/configmap.yaml").read_text()):
        if doc and "envoy.yaml" in (doc.get("data") or {}):
            out["deploy/k8s/configmap.yaml"] = yaml.safe_load(doc["data"]["envoy.yaml"])
    return out


@pytest.mark.parametrize("name", ["envoy/envoy.yaml", "envoy/envoy-original-dst.yaml", "deploy/envoy-compose.yaml",
                                  "deploy/k8s/configmap.yaml"])
def test_every_shipped_envoy_config_routes_each_api_with_the_observer_on(name: str) -> None:
    """A request the router did not route (failed open) still reaches a model on every API path, and its answer
    still streams to the observer; the catch-all route (observer off) is only for other paths."""
    cfg = _shipped_envoy_configs()[name]
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    import re

    def matches(m: dict[str, Any], path: str) -> bool:  # Envoy's path matchers: exact, prefix, RE2 full match
        if "safe_regex" in m:
            return re.fullmatch(m["safe_regex"]["regex"], path) is not None
        return m.get("path") == path or path.startswith(m.get("prefix", "\0"))

    for path in apis.API_PATHS:
        first = next(r for r in routes if not r["match"].get("headers") and matches(r["match"], path))
        assert first["match"].get("prefix") != "/", (name, path)  # not the catch-all
        assert "route" in first and "typed_per_filter_config" not in first, (name, path)  # a model, observer on


def test_anthropic_api_keys_are_cache_tenants() -> None:
    """x-api-key (how Anthropic clients authenticate) names the tenant: two keys never share an entry."""
    cfg = CacheConfig()
    req = _parse("messages", {"model": "auto", "max_tokens": 9, "messages": [{"role": "user", "content": "Hi"}]})
    a, b = (make_key(cfg, req, {"x-api-key": k}) for k in ("sk-ant-a", "sk-ant-b"))
    assert a is not None and b is not None and a.tenant != b.tenant and "anonymous" not in (a.tenant, b.tenant)
    assert make_key(cfg, req, {"x-api-key": "sk-ant-a"}).tenant == a.tenant


# Every request field of the two APIs as documented (OpenAI "create a model response", Anthropic "create a
# message"); the content fields are converted into messages (request/apis.py) and are the prompt and context.
RESPONSES_FIELDS = ("background", "conversation", "include", "input", "instructions", "max_output_tokens",
                    "max_tool_calls", "metadata", "model", "parallel_tool_calls", "previous_response_id", "prompt",
                    "prompt_cache_key", "reasoning", "safety_identifier", "service_tier", "store", "stream",
                    "stream_options", "temperature", "text", "tool_choice", "tools", "top_logprobs", "top_p",
                    "truncation", "user")
MESSAGES_FIELDS = ("model", "messages", "max_tokens", "container", "context_management", "mcp_servers", "metadata",
                   "service_tier", "stop_sequences", "stream", "system", "temperature", "thinking", "tool_choice",
                   "tools", "top_k", "top_p")


@pytest.mark.parametrize("api,fields,converted", [("responses", RESPONSES_FIELDS, {"input", "instructions"}),
                                                  ("messages", MESSAGES_FIELDS, {"system"})])
def test_every_api_field_is_converted_scoped_or_listed_neutral(api: str, fields: tuple[str, ...],
                                                               converted: set[str]) -> None:
    from semrouter.cache.keys import ANSWER_NEUTRAL, SCOPE_FIELDS

    scoped, neutral = SCOPE_FIELDS[api], ANSWER_NEUTRAL[api]
    assert not set(scoped) & set(neutral)
    missing = [f for f in fields if f not in scoped and f not in neutral and f not in converted]
    assert not missing, f"decide for each: scope (SCOPE_FIELDS) or answer-neutral with a reason: {missing}"
    body = {"model": "auto", "input": "Hi there"} if api == "responses" else \
        {"model": "auto", "max_tokens": 9, "messages": [{"role": "user", "content": "Hi there"}]}
    base = make_key(CacheConfig(), _parse(api, body), {})
    for field in scoped:  # each separates the scope (with any value the parser accepts for it)
        for value in ({"x": 1}, {"type": "x"}, "x", 5, [{"type": "x"}], ["x"]):
            try:
                req = _parse(api, {**body, field: value})
            except RequestError:
                continue
            key = make_key(CacheConfig(), req, {})
            assert key is None or key.scope != base.scope, field
            break
        else:
            raise AssertionError(f"no value of {field} parses")


def test_explain_request_keys_a_whole_body_in_its_own_scope() -> None:
    """`cache explain --request`: the body of any API gives the key the router gives that request; the bare
    prompt is a chat request with no parameters (another scope than a Messages request's)."""
    body = {"model": "auto", "max_tokens": 50, "system": "Be brief.",
            "messages": [{"role": "user", "content": "Name a red fruit."}]}
    routed = make_key(CacheConfig(), _parse("messages", body), {}, tenant="t")
    explained = make_key(CacheConfig(), apis.explain_request("", "auto", "messages", json.dumps(body)), {}, tenant="t")
    bare = make_key(CacheConfig(), apis.explain_request("Name a red fruit.", "auto"), {}, tenant="t")
    assert routed is not None and explained is not None and bare is not None
    assert explained.scope == routed.scope and explained.prompt_hash == routed.prompt_hash
    assert bare.scope != routed.scope and bare.prompt_hash == routed.prompt_hash
    with pytest.raises(ValueError, match="max_tokens"):
        apis.explain_request("", "auto", "messages", json.dumps({"model": "auto", "messages": []}))
    with pytest.raises(ValueError, match="api must be one of"):
        apis.explain_request("", "auto", "embeddings", "{}")
