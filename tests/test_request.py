"""Request parsing and body rewriting."""

from __future__ import annotations

import json

import pytest

from semrouter.config.schema import Model, SystemPrompt
from semrouter.request.errors import RequestError
from semrouter.request.parse import check_content_type, parse_chat_request
from semrouter.request.rewrite import rewrite_body


def raw(obj) -> bytes:
    return json.dumps(obj).encode()


def test_parse_valid_request_and_text_selection() -> None:
    r = parse_chat_request(raw({"model": "auto", "stream": True, "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url", "image_url": {}}]},
    ]}), 10_000)
    assert r.stream is True and r.model == "auto"
    assert r.text_for("last_user") == "second"
    assert r.text_for("all_user") == "first question\nsecond"
    assert "assistant: an answer" in r.text_for("conversation")


@pytest.mark.parametrize("body, status, code", [
    (b"\xff\xfe", 400, "invalid_json"),
    (b"nope", 400, "invalid_json"),
    (raw({"messages": [{"role": "user", "content": "x"}]}), 400, "invalid_value"),
    (raw({"model": "a", "messages": [{"role": "assistant"}]}), 400, "invalid_value"),
    (raw({"model": "a", "messages": [{"role": "user", "content": [1]}]}), 400, "invalid_value"),
    (raw({"model": "a", "messages": [{"role": "user", "content": "x"}], "n": True}), 400, "invalid_value"),
    (b"{" + b" " * 200 + b"}", 413, "request_too_large"),
])
def test_parse_errors(body: bytes, status: int, code: str) -> None:
    with pytest.raises(RequestError) as e:
        parse_chat_request(body, 100)
    assert (e.value.status, e.value.code) == (status, code)
    err = json.loads(e.value.body())["error"]
    assert err["code"] == code and err["message"]


def test_assistant_tool_call_without_content_is_fine() -> None:
    r = parse_chat_request(raw({"model": "a", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function",
                                                                "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "1", "content": "42"},
    ]}), 10_000)
    assert len(r.messages) == 3


@pytest.mark.parametrize("ctype, ok", [
    ("application/json", True), ("application/json; charset=utf-8", True), (None, True),
    ("application/vnd.api+json", True), ("text/plain", False), ("multipart/form-data; boundary=x", False),
])
def test_content_type(ctype, ok: bool) -> None:
    if ok:
        check_content_type(ctype)
    else:
        with pytest.raises(RequestError) as e:
            check_content_type(ctype)
        assert e.value.status == 415


def _model(**kw) -> Model:
    return Model(name="m2", endpoints=({"address": "h", "port": 1},), **kw)


def test_rewrite_changes_model_only() -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "héllo"}], "stream": True,
            "temperature": 0.0, "max_tokens": 5, "tools": [{"type": "function", "function": {"name": "f"}}],
            "x_custom": {"nested": [1, 2.5, None, True]}}
    out = json.loads(rewrite_body(body, _model(), None, None))
    assert out.pop("model") == "m2"
    body.pop("model")
    assert out == body  # everything else equal in meaning, `stream` included
    assert out["temperature"] == 0.0 and isinstance(out["temperature"], float)


def test_rewrite_reasoning_families() -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "x"}], "chat_template_kwargs": {"a": 1}}
    m = _model(reasoning_family={"type": "chat_template_kwargs", "parameter": "enable_thinking"})
    assert json.loads(rewrite_body(body, m, True, None))["chat_template_kwargs"] == {"a": 1, "enable_thinking": True}
    assert json.loads(rewrite_body(body, m, False, None))["chat_template_kwargs"]["enable_thinking"] is False
    e = _model(reasoning_family={"type": "reasoning_effort", "effort": "high"})
    assert json.loads(rewrite_body(body, e, True, None))["reasoning_effort"] == "high"
    assert "reasoning_effort" not in json.loads(rewrite_body({**body, "reasoning_effort": "low"}, e, False, None))
    assert "chat_template_kwargs" not in json.loads(rewrite_body({"model": "a", "messages": []}, _model(), True, None))


def test_rewrite_system_prompt_insert_and_replace() -> None:
    body = {"model": "auto", "messages": [{"role": "system", "content": "old"}, {"role": "user", "content": "q"}]}
    ins = json.loads(rewrite_body(body, _model(), None, SystemPrompt(text="new", mode="insert")))["messages"]
    assert [m["content"] for m in ins] == ["new", "old", "q"]
    rep = json.loads(rewrite_body(body, _model(), None, SystemPrompt(text="new", mode="replace")))["messages"]
    assert [m["content"] for m in rep] == ["new", "q"]


def test_unclassified_text_is_what_the_signals_do_not_read() -> None:
    req = parse_chat_request(raw({"model": "auto", "messages": [
        {"role": "system", "content": "Record: SSN 536-22-1847"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "tool", "tool_call_id": "c1", "content": "tool output"},
        {"role": "user", "content": "last question"}]}), 10_000)
    assert req.unclassified_text("last_user").splitlines() == [
        "Record: SSN 536-22-1847", "first question", "an answer", "tool output"]
    assert req.unclassified_text("all_user").splitlines() == ["Record: SSN 536-22-1847", "an answer", "tool output"]
    assert req.unclassified_text("conversation") == ""
    only = parse_chat_request(raw({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}), 10_000)
    assert only.unclassified_text("last_user") == ""  # a one-message request is not scanned twice


def test_every_text_a_model_reads_is_read_and_odd_parts_never_raise() -> None:
    """review15: text-bearing parts other than `text` (input_text, output_text, refusal; Messages documents and search
    results) are the message's text; tool call arguments, reasoning, tool definitions and vLLM documents are in the
    whole-request PII text. Nested blocks are not validated: any JSON value there reads as no text, never a 500."""
    from semrouter.request.parse import body_texts, content_text, definition_texts, unread_texts

    parts = [{"type": "input_text", "text": "a"}, {"type": "output_text", "text": "b"}, {"type": "refusal", "refusal": "c"},
             {"type": "document", "title": "t", "source": {"type": "text", "data": "d"}},
             {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "e"}]}},
             {"type": "document", "source": {"type": "base64", "data": "AAAA"}},
             {"type": "search_result", "content": [{"type": "text", "text": "f"}, {"type": [1], "text": "g"}]},
             {"type": [1]}, {"type": {"x": 1}, "text": "h"}, {"type": "image_url", "image_url": {"url": "i"}}, 7]
    assert content_text(parts).splitlines() == ["a", "b", "c", "t", "d", "e", "f"]
    msg = {"role": "assistant", "content": None, "reasoning_content": "r",
           "tool_calls": [{"function": {"arguments": '{"q": 1}'}}, {"function": {"arguments": {"not": "a string"}}}, 3]}
    assert unread_texts(msg) == ['{"q": 1}', "r"]
    body = {"tools": [{"function": {"description": "d", "parameters": {"type": "object", "properties": {
        "phone": {"type": "string", "examples": ["+14155552671"], "default": "+14155550100", "pattern": "^\\+"}}}}}],
        "functions": [{"name": "f"}], "documents": [{"text": "x"}], "metadata": {"note": "not read"}}
    assert body_texts(body) == ["x"]
    assert definition_texts(body) == ["d", "object", "string", "f"]  # JSON Schema sample values left out
    req = parse_chat_request(json.dumps({"model": "auto", "tools": [{"type": "function", "function": {"name": "crm"}}],
                                         "messages": [{"role": "system", "content": "s"},
                                                      {"role": "assistant", "content": None, "tool_calls": [
                                                          {"id": "1", "function": {"arguments": "args"}}]},
                                                      {"role": "tool", "tool_call_id": "1", "content": "out"},
                                                      {"role": "user", "content": "q"}]}).encode(), 10**6)
    # in reading order, so that the analysis window's tail keeps the latest turns of a long conversation; tool
    # definitions apart (review16: their own window, so long schemas do not push the conversation out of it)
    assert req.unclassified_text("last_user").splitlines() == ["s", "args", "out"]
    assert req.unclassified_text("conversation").splitlines() == ["args"]
    assert req.definitions_text.splitlines() == ["function", "crm"]
    dev = parse_chat_request(raw({"model": "auto", "messages": [
        {"role": "developer", "content": "d", "tools": [{"function": {"description": "own", "default": "x"}}]},
        {"role": "user", "content": "q", "tools": [{"description": "not a developer's"}]}]}), 10_000)
    assert dev.definitions_text == "own"  # vLLM passes a developer message's tools to the template


def test_safety_texts_are_the_untrusted_parts_newest_tool_result_first() -> None:
    """The guard reads tool results (newest first, vLLM documents after them), the client's system text and earlier
    user turns (newest first) beside the classified text; never the classified text twice, never an assistant
    answer; `conversation` classifies everything already."""
    req = parse_chat_request(raw({"model": "auto", "documents": [{"text": "doc"}], "messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": "second question"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "function": {"arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "1", "content": "older result"},
        {"role": "tool", "tool_call_id": "2", "content": "newer result"},
        {"role": "user", "content": "last question"}]}), 10_000)
    every = ("tool_results", "system", "earlier_user")
    assert req.safety_texts(every, "last_user") == [
        "newer result", "older result", "doc", "sys", "second question", "first question"]
    assert req.safety_texts(("tool_results",), "last_user") == ["newer result", "older result", "doc"]
    assert req.safety_texts(("earlier_user", "system"), "last_user") == ["sys", "second question", "first question"]
    assert req.safety_texts((), "last_user") == []
    assert req.safety_texts(every, "all_user") == ["newer result", "older result", "doc", "sys"]
    assert req.safety_texts(every, "conversation") == []
    same = parse_chat_request(raw({"model": "auto", "messages": [
        {"role": "user", "content": "q"}, {"role": "tool", "tool_call_id": "1", "content": "q"},
        {"role": "user", "content": "q"}]}), 10_000)
    assert same.safety_texts(every, "last_user") == []  # the classified text is already scored


def test_safety_texts_read_tool_results_of_every_api() -> None:
    """Responses `function_call_output` and kept tool items, Messages `tool_result` blocks and `system` arrive as
    chat roles (request/responses_api.py, request/anthropic.py): the guard reads them all."""
    from semrouter.request import apis

    resp = apis.parse("responses", json.dumps({"model": "auto", "instructions": "be brief", "input": [
        {"type": "message", "role": "user", "content": "look it up"},
        {"type": "function_call", "call_id": "c", "name": "web", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "page text"},
        {"type": "mcp_call", "id": "m", "name": "files", "server_label": "fs", "arguments": "{}",
         "output": "file text"},
        {"type": "reasoning", "id": "r", "summary": [{"type": "summary_text", "text": "thinking"}]},
        {"type": "message", "role": "user", "content": "and now?"}]}).encode(), 10**6)
    texts = resp.safety_texts(("tool_results", "system", "earlier_user"), "last_user")
    assert texts[:2] == ["files\n{}\nfile text", "page text"]  # newest first
    assert texts[2:] == ["be brief", "look it up"] and "thinking" not in "".join(texts)
    msgs = apis.parse("messages", json.dumps({"model": "auto", "max_tokens": 9, "system": "house rules",
                                              "messages": [{"role": "user", "content": [
                                                  {"type": "tool_result", "tool_use_id": "t", "content": [
                                                      {"type": "text", "text": "result text"}]},
                                                  {"type": "text", "text": "what did it say?"}]}]}).encode(), 10**6)
    assert msgs.safety_texts(("tool_results", "system"), "last_user") == ["result text", "house rules"]


def test_a_thinking_part_is_text_as_vllm_reads_it() -> None:
    """review16: vLLM's chat parser reads a `thinking` part's `thinking` as text in any role; the router did not."""
    req = parse_chat_request(raw({"model": "auto", "messages": [{"role": "user", "content": [
        {"type": "thinking", "thinking": "hidden"}, {"type": "text", "text": "shown"}]}]}), 10_000)
    assert req.last_user_text.splitlines() == ["hidden", "shown"]
    with pytest.raises(RequestError) as e:
        parse_chat_request(raw({"model": "auto", "messages": [{"role": "user", "content": [
            {"type": "thinking", "thinking": 3}]}]}), 10_000)
    assert e.value.param == "messages[0].content[0].thinking"


def test_text_outside_the_parsed_fields_is_read_and_binary_or_opaque_data_is_not() -> None:
    """trust18: a message's `name`, `chat_template_kwargs` strings, a Responses `prompt`'s variables, Messages server
    and MCP tool calls and results, and blocks of a type the router does not know reach the model: the PII scan
    reads them (`unclassified_text`), and the guard (`safety_texts`) where they are untrusted. Ids, signatures,
    encrypted content, base64 and URL sources are not text."""
    from semrouter.request import apis

    chat = apis.parse("chat", json.dumps({"model": "auto", "chat_template_kwargs": {
        "enable_thinking": True, "persona": {"style": "kwarg words"}}, "messages": [
        {"role": "system", "name": "sysname", "content": "house rules"},
        {"role": "user", "name": "username", "content": "hello"}]}).encode(), 10**6)
    left = chat.unclassified_text("last_user").split("\n")
    assert {"kwarg words", "sysname", "username"} <= set(left) and "True" not in left
    assert chat.safety_texts(("tool_results", "earlier_user"), "last_user") == ["username"]
    assert chat.safety_texts(("system",), "last_user") == ["house rules", "kwarg words", "sysname"]
    resp = apis.parse("responses", json.dumps({"model": "auto", "input": "go", "prompt": {
        "id": "pmpt_9", "version": "3", "variables": {"who": "variable words", "doc": {
            "type": "input_text", "text": "part words"}, "pic": {"type": "input_file", "file_data": "QUJD"}}}}).encode(),
        10**6)
    assert resp.unclassified_text("last_user").split("\n") == ["variable words", "part words"]
    assert resp.safety_texts(("tool_results",), "last_user") == ["part words", "variable words"]
    msgs = apis.parse("messages", json.dumps({"model": "auto", "max_tokens": 9, "messages": [
        {"role": "user", "content": "find it"},
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {"query": "query words"}},
            {"type": "web_search_tool_result", "tool_use_id": "s1", "content": [
                {"type": "web_search_result", "url": "https://a.example", "title": "title words",
                 "encrypted_content": "SECRETBLOB", "page_age": "1 day"}]},
            {"type": "web_fetch_tool_result", "tool_use_id": "s2", "content": {
                "type": "web_fetch_result", "url": "https://b.example", "content": {"type": "document", "source": {
                    "type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}}}},
            {"type": "mcp_tool_use", "id": "m1", "name": "crm", "server_name": "s", "input": {"id": "mcp words"}},
            {"type": "mcp_tool_result", "tool_use_id": "m1", "content": "mcp result words"},
            {"type": "future_block", "signature": "SIG", "body": [{"deep": "future words"}]},
            {"type": "text", "text": "found"}]},
        {"role": "user", "content": "summarise"}]}).encode(), 10**6)
    tools = msgs.safety_texts(("tool_results",), "last_user")
    assert tools == ["future words", "mcp result words", "https://b.example", "https://a.example\ntitle words"]
    left = msgs.unclassified_text("last_user")
    assert '{"query": "query words"}' in left and '{"id": "mcp words"}' in left
    assert not any(s in left for s in ("SECRETBLOB", "JVBERi0x", "SIG", "1 day"))
    # odd shapes never raise: non-dict blocks inside, non-string ids, a list input
    odd = apis.parse("messages", json.dumps({"model": "auto", "max_tokens": 9, "messages": [
        {"role": "assistant", "content": [{"type": "server_tool_use", "id": 5, "input": [1, "x"]},
                                          {"type": "weird", "tool_use_id": [1], "content": [None, 3, {"a": "y"}]},
                                          {"type": "weird", "content": {"type": ["base64"], "b": "z"}}]},
        {"role": "user", "content": "ok"}]}).encode(), 10**6)
    assert odd.safety_texts(("tool_results",), "last_user") == ["z", "y"] and "x" in odd.unclassified_text("last_user")
    # review18: each search hit is a text of its own (a list of links read as one text looks planted), then the
    # block's other strings
    hits = apis.parse("messages", json.dumps({"model": "auto", "max_tokens": 9, "messages": [
        {"role": "assistant", "content": [{"type": "web_search_tool_result", "tool_use_id": "s1", "note": "n",
                                           "content": [{"type": "web_search_result", "url": f"https://{k}.example",
                                                        "title": f"title {k}"} for k in "ab"]}]},
        {"role": "user", "content": "ok"}]}).encode(), 10**6)
    assert hits.safety_texts(("tool_results",), "last_user") == ["n", "https://b.example\ntitle b",
                                                                 "https://a.example\ntitle a"]


def test_a_prefill_is_read_with_the_earlier_turns_and_assistant_turns_on_request() -> None:
    """trust18: a last message that is an assistant turn is a prefill the model continues (Messages natively, vLLM
    with continue_final_message): read with `earlier_user`, first. Earlier assistant turns are the client's writing
    too (it sends its history): read only with the opt-in `assistant` part, newest first."""
    from semrouter.request import apis

    body = {"model": "auto", "max_tokens": 9, "messages": [
        {"role": "user", "content": "first question"}, {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"}, {"role": "assistant", "content": "a prefill"}]}
    msgs = apis.parse("messages", json.dumps(body).encode(), 10**6)
    assert msgs.safety_texts(("tool_results", "earlier_user"), "last_user") == ["a prefill", "first question"]
    assert msgs.safety_texts(("assistant",), "last_user") == ["first answer"]
    chat = apis.parse("chat", json.dumps({"model": "auto", "messages": body["messages"][:3]}).encode(), 10**6)
    assert chat.safety_texts(("earlier_user",), "last_user") == ["first question"]
    assert chat.safety_texts(("earlier_user", "assistant"), "last_user") == ["first question", "first answer"]
