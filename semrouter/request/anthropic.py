"""Anthropic Messages (`POST /v1/messages`) body ↔ the router's internal chat-completions request.

Conversion (`parse`): `system` (a string or text blocks) becomes a leading system message; each message
keeps its role, its content as a string or as parts: `text` blocks become text parts, `image` and
`document` blocks are kept as non-text parts (cache scope; the text of a document with a text or content
source, and of a `search_result` block, is read as the message's text: parse.content_text),
`thinking`/`redacted_thinking` blocks are kept out of the text; an assistant's `tool_use` blocks, and
`server_tool_use` / `mcp_tool_use` blocks (these also kept whole as parts), become `tool_calls` (arguments as JSON
text) and a user's `tool_result` blocks become `tool` messages placed before the rest of that user turn, as in chat.
Every other block (the results of server tools: web search, web fetch, code execution, tool search;
`mcp_tool_result`; `compaction`; any type added later) is kept whole as a non-text part (cache scope) and read as a
tool result: its strings (`block_strings`: not ids, signatures, encrypted or binary data) become a `tool` message
after its turn (trust18: they were kept as parts and never read), one per search hit (`result_texts`).
Every other field (`max_tokens`, `thinking`, `tools`, `stop_sequences`, `top_k`, ...) is kept under its name.

Rewrite (`rewrite`): `model`; the reasoning switch as `thinking` (`{"type": "enabled", "budget_tokens": N}`
with N from the model's configured effort: low 1024, medium 4096, high 16384, kept below `max_tokens`; or
`{"type": "disabled"}`; a `max_tokens` too small for the 1024-token minimum budget leaves thinking off);
a category system prompt as `system` (insert: before the client's system text or blocks; replace: instead).
The `x-api-key` and `anthropic-version` headers are not touched: Envoy forwards them as sent.
"""

from __future__ import annotations

import json
from typing import Any

from semrouter.config.schema import Model, SystemPrompt
from semrouter.request import body_json
from semrouter.request.parse import ChatRequest, string_values
from semrouter.request.validate import check_model, check_no_request_template, invalid_value

THINKING_BUDGET = {"low": 1024, "medium": 4096, "high": 16384}
MIN_THINKING_BUDGET = 1024
_CONTENT_FIELDS = frozenset({"system", "messages"})
_HIDDEN_BLOCKS = frozenset({"thinking", "redacted_thinking"})


def parse(body: dict[str, Any]) -> ChatRequest:
    """A validated Messages body (a JSON object) → `ChatRequest` (api "messages"); `RequestError` 400 names
    the offending field (rendered in Anthropic's error shape by response/apis.py)."""
    model = check_model(body)
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise invalid_value("max_tokens: Field required (an integer >= 1)", "max_tokens")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise invalid_value("messages: must be a non-empty array", "messages")
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system is not None:
        messages.append({"role": "system", "content": _system_text(system)})
    for i, m in enumerate(raw):
        messages.extend(_message(i, m))
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise invalid_value("stream: must be a boolean", "stream")
    thinking = body.get("thinking")
    if thinking is not None and (not isinstance(thinking, dict) or not isinstance(thinking.get("type"), str)):
        raise invalid_value("thinking: must be an object with a 'type'", "thinking")
    for key, kind, name in (("temperature", (int, float), "a number"), ("top_p", (int, float), "a number"),
                            ("top_k", int, "an integer")):
        v = body.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, kind)):
            raise invalid_value(f"{key}: must be {name}", key)
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise invalid_value("stop_sequences: must be an array of strings", "stop_sequences")
    if body.get("tools") is not None and not isinstance(body["tools"], list):
        raise invalid_value("tools: must be an array", "tools")
    check_no_request_template(body)
    chat = {k: v for k, v in body.items() if k not in _CONTENT_FIELDS}
    chat["messages"] = messages
    return ChatRequest(body=chat, model=model, messages=tuple(messages), stream=bool(stream),
                       api="messages", source=body)


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text"
                                        and isinstance(b.get("text"), str) for b in system):
        return "\n".join(b["text"] for b in system)
    raise invalid_value("system: must be a string or an array of text blocks", "system")


def _message(i: int, m: Any) -> list[dict[str, Any]]:
    where = f"messages.{i}"
    if not isinstance(m, dict):
        raise invalid_value(f"{where}: must be an object", where)
    role = m.get("role")
    if role not in ("user", "assistant"):
        raise invalid_value(f"{where}.role: must be 'user' or 'assistant'", f"{where}.role")
    content = m.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise invalid_value(f"{where}.content: must be a string or an array of content blocks", f"{where}.content")
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    later: list[dict[str, Any]] = []  # server / MCP tool results in this turn, as tool messages after it
    for j, b in enumerate(content):
        at = f"{where}.content.{j}"
        if not isinstance(b, dict) or not isinstance(b.get("type"), str):
            raise invalid_value(f"{at}: must be an object with a 'type'", at)
        t = b["type"]
        if t == "text":
            if not isinstance(b.get("text"), str):
                raise invalid_value(f"{at}.text: must be a string", f"{at}.text")
            parts.append({"type": "text", "text": b["text"]})
        elif t == "tool_use" and role == "assistant":
            if not isinstance(b.get("id"), str) or not isinstance(b.get("name"), str):
                raise invalid_value(f"{at}: tool_use needs string 'id' and 'name'", at)
            calls.append({"id": b["id"], "type": "function", "function": {
                "name": b["name"], "arguments": json.dumps(b.get("input") or {}, sort_keys=True)}})
        elif t == "tool_result" and role == "user":
            if not isinstance(b.get("tool_use_id"), str):
                raise invalid_value(f"{at}.tool_use_id: must be a string", f"{at}.tool_use_id")
            inner = b.get("content", "")
            if not isinstance(inner, (str, list)):
                raise invalid_value(f"{at}.content: must be a string or an array", f"{at}.content")
            results.append({"role": "tool", "tool_call_id": b["tool_use_id"], "content": inner,
                            "is_error": bool(b.get("is_error"))})
        elif t in _HIDDEN_BLOCKS:
            parts.append({"type": t})  # its signature/data stays out of the text (and of the cache scope)
        elif t in _SERVER_CALLS:  # a server or MCP tool call: its input is read as tool call arguments
            parts.append(dict(b))  # kept whole too: the cache scope tells apart every field (server, ids)
            calls.append({"id": b.get("id") if isinstance(b.get("id"), str) else "", "type": "function", "function": {
                "name": b.get("name") if isinstance(b.get("name"), str) else t,
                "arguments": json.dumps(b.get("input"), sort_keys=True)}})
        elif t in _KEPT_BLOCKS:
            parts.append(dict(b))
        else:  # a server or MCP tool's result, or a type this router does not know: read as a tool result
            # kept whole as a part (not text: content_text skips it), so the cache scope still tells apart what the
            # router does not read (encrypted search results the upstream decrypts, ids)
            parts.append(dict(b))
            ref = b.get("tool_use_id")
            later += ({"role": "tool", "tool_call_id": ref if isinstance(ref, str) else "", "content": text}
                      for text in result_texts(b))
    out = list(results)
    if parts or calls or not results:
        msg: dict[str, Any] = {"role": role, "content": parts}
        if calls:
            msg["tool_calls"] = calls
        out.append(msg)
    return out + later


# Blocks kept as parts whose text (if any) parse.content_text reads: documents and search results (their text), images
# and container uploads (a file id: no text).
_KEPT_BLOCKS = frozenset({"image", "document", "search_result", "container_upload"})
# Calls of tools the API runs itself (`server_tool_use`: web search, web fetch, code execution, ...) and of MCP
# servers (`mcp_tool_use`): the model reads their `input` as it reads a `tool_use`'s.
_SERVER_CALLS = frozenset({"server_tool_use", "mcp_tool_use"})
# Strings inside a block that are ids, signatures, encrypted or binary data, or metadata, not text the model reads.
_OPAQUE_BLOCK_KEYS = frozenset({"type", "id", "tool_use_id", "cache_control", "caller", "signature",
                                "encrypted_content", "encrypted_stdout", "file_id", "media_type", "page_age",
                                "retrieved_at", "file_type", "citations"})
# Objects that stand for binary or fetched data (a base64 / URL / file source, an image): skipped whole.
_BINARY_TYPES = frozenset({"base64", "url", "file", "image"})


def result_texts(block: Any) -> list[str]:
    """The texts of a block read as a tool result (the `else` branch of `_message`), each a tool message of its own:
    one per hit when the block's `content` is a list of objects that carry a string `url` (a web search's results:
    pages by different authors, each a document of its own), then the block's other strings; otherwise one text of
    all its `block_strings`. review18: as one text, four or more ordinary search results (a title and a URL each)
    scored injection 0.94-0.996 (a list of links reads as planted ones to the head; threshold 0.9348), so every
    Messages web search of the usual 5-10 hits was refused; one hit scores under 0.25. Empty texts are left out.
    Never raises."""
    content = block.get("content") if isinstance(block, dict) else None
    hits = content if isinstance(content, list) and content and all(
        isinstance(x, dict) and isinstance(x.get("url"), str) for x in content) else None
    if hits is None:
        texts = ["\n".join(block_strings(block))]
    else:
        rest = {k: v for k, v in block.items() if k != "content"}
        texts = ["\n".join(block_strings(x)) for x in hits] + ["\n".join(block_strings(rest))]
    return [t for t in texts if t]


def block_strings(block: Any) -> list[str]:
    """Every string a Messages block carries that the model reads, in document order: all string values at any
    depth except those of `_OPAQUE_BLOCK_KEYS` and inside objects of a `_BINARY_TYPES` type (not keys). Used for
    the blocks the router does not convert: the results of server tools (`web_search_tool_result`: titles and URLs;
    `web_fetch_tool_result`: the fetched document's text; `code_execution_tool_result` and its bash / text editor
    kinds: stdout, stderr, file contents; `tool_search_tool_result`), `mcp_tool_result` (its text), `compaction`
    (the summary), and any block type Anthropic adds later: read as a tool result (trust18; before, all of them
    were kept as parts and never read). Never raises; iterative (any JSON)."""
    return string_values(block, _OPAQUE_BLOCK_KEYS, _BINARY_TYPES)


def thinking_for(model: Model, use_reasoning: bool, max_tokens: Any) -> dict[str, Any]:
    """The `thinking` object that switches reasoning on or off for `model` within `max_tokens`."""
    fam = model.reasoning_family
    budget = THINKING_BUDGET[fam.effort] if fam is not None else THINKING_BUDGET["medium"]
    if isinstance(max_tokens, int):
        budget = min(budget, max_tokens - 1)
    if not use_reasoning or budget < MIN_THINKING_BUDGET:
        return {"type": "disabled"}
    return {"type": "enabled", "budget_tokens": budget}


def rewrite(source: dict[str, Any], model: Model, use_reasoning: bool | None,
            system_prompt: SystemPrompt | None) -> bytes:
    """The client's Messages body for the upstream (see module docstring); `use_reasoning` None (or a model
    without a reasoning mode) leaves `thinking` as sent."""
    out = dict(source)
    out["model"] = model.name
    if model.reasoning_family is not None and use_reasoning is not None:
        out["thinking"] = thinking_for(model, use_reasoning, out.get("max_tokens"))
    if system_prompt is not None:
        own = out.get("system")
        if system_prompt.mode == "replace" or not own:
            out["system"] = system_prompt.text
        elif isinstance(own, str):
            out["system"] = f"{system_prompt.text}\n\n{own}"
        else:
            out["system"] = [{"type": "text", "text": system_prompt.text}, *own]
    return body_json.dumps(out)

