"""Stored answers in, replayed answers out.

Store side: an upstream answer is either one `chat.completion` JSON object or a full SSE stream
of `chat.completion.chunk` events; both are reduced to one chat.completion JSON object (content
and reasoning concatenated, tool-call deltas merged by index, finish_reason, usage when the stream
carried it). Anything incomplete is refused (returns None): no `data: [DONE]`, a choice without
finish_reason, an `error` object, unparsable JSON; and an answer the provider filtered or refused
(a choice with `finish_reason: content_filter`, which Responses `incomplete`/`content_filter` and Messages
`stop_reason: refusal` become, or with a `refusal` text): its content was cut or withheld by a policy of
that moment, so it is not the answer to the question and must not be served to the next asker.

Replay side (`render`): a fresh `id` (`chatcmpl-cache-…`) and `created` per reply; `model` is the
model that produced the stored answer (the requested model when the answer names none). As SSE:
one role chunk per choice, the content in pieces of at most 64 characters, tool calls in one
delta, a finish chunk carrying finish_reason, then — when `include_usage` (the default; pass the
client's `stream_options.include_usage` to follow OpenAI exactly) — a usage chunk with
`choices: []`, then `data: [DONE]`. `usage` is the stored answer's usage: the tokens of the answer
that is served (nothing was generated for this reply); zero counts when the stored answer had none.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from semrouter.response.openai import sse_from_completion
from semrouter.response.sse import event_data

SSE = "text/event-stream"
JSON = "application/json"


def completion_from_upstream(content_type: str, body: bytes) -> dict[str, Any] | None:
    """The answer as one chat.completion object, or None if it is not a complete answer."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == SSE:
        obj = assemble_sse(body)
        return None if obj is None or _refused(obj) else obj
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(obj, dict) or "error" in obj:
        return None
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices:
        return None
    for c in choices:
        if not isinstance(c, dict) or not isinstance(c.get("message"), dict) or not c.get("finish_reason"):
            return None
    return None if _refused(obj) else obj


def _refused(obj: dict[str, Any]) -> bool:
    """Whether a complete answer was filtered or refused by the provider (see module docstring)."""
    return any(isinstance(c, dict) and (c.get("finish_reason") == "content_filter"
                                        or ((c.get("message") or {}).get("refusal") or "") != "")
               for c in obj.get("choices") or ())


def _events(body: bytes) -> tuple[list[dict[str, Any]], bool] | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    chunks: list[dict[str, Any]] = []
    done = False
    for data in event_data(text):
        if done:
            return None  # events after [DONE]
        if data.strip() == "[DONE]":
            done = True
            continue
        try:
            obj = json.loads(data)
        except json.JSONDecodeError:
            return None
        if not isinstance(obj, dict) or "error" in obj:
            return None
        chunks.append(obj)
    return chunks, done


def assemble_sse(body: bytes) -> dict[str, Any] | None:
    parsed = _events(body)
    if parsed is None:
        return None
    chunks, done = parsed
    if not done or not chunks:
        return None
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    for ch in chunks:
        if isinstance(ch.get("usage"), dict):
            usage = ch["usage"]
        for c in ch.get("choices") or ():
            if not isinstance(c, dict):
                return None
            slot = choices.setdefault(int(c.get("index", 0)), {"role": "assistant", "parts": {}, "tools": {},
                                                                 "finish": None})
            delta = c.get("delta") or {}
            if delta.get("role"):
                slot["role"] = delta["role"]
            for field in ("content", "reasoning_content", "reasoning", "refusal"):
                if isinstance(delta.get(field), str):
                    slot["parts"].setdefault(field, []).append(delta[field])
            for tc in delta.get("tool_calls") or ():
                _merge_tool_call(slot["tools"], tc)
            if c.get("finish_reason"):
                slot["finish"] = c["finish_reason"]
    if not choices or any(s["finish"] is None for s in choices.values()):
        return None
    first = chunks[0]
    out: dict[str, Any] = {
        "id": first.get("id", ""),
        "object": "chat.completion",
        "created": first.get("created", int(time.time())),
        "model": first.get("model", ""),
        "choices": [_choice(i, choices[i]) for i in sorted(choices)],
    }
    if first.get("system_fingerprint"):
        out["system_fingerprint"] = first["system_fingerprint"]
    if usage is not None:
        out["usage"] = usage
    return out


def _merge_tool_call(tools: dict[int, dict[str, Any]], tc: dict[str, Any]) -> None:
    slot = tools.setdefault(int(tc.get("index", len(tools))), {"type": "function", "function": {"arguments": ""}})
    if tc.get("id"):
        slot["id"] = tc["id"]
    if tc.get("type"):
        slot["type"] = tc["type"]
    fn = tc.get("function") or {}
    if fn.get("name"):
        slot["function"]["name"] = fn["name"]
    if isinstance(fn.get("arguments"), str):
        slot["function"]["arguments"] += fn["arguments"]


def _choice(index: int, slot: dict[str, Any]) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": slot["role"], "content": None}
    for field, parts in slot["parts"].items():
        msg[field] = "".join(parts)
    if slot["tools"]:
        msg["tool_calls"] = [slot["tools"][i] for i in sorted(slot["tools"])]
    return {"index": index, "message": msg, "finish_reason": slot["finish"]}


def render(stored: bytes, stream: bool, requested_model: str, include_usage: bool = True) -> tuple[bytes, str]:
    obj = json.loads(stored)
    reply_id = "chatcmpl-cache-" + uuid.uuid4().hex
    created = int(time.time())
    model = obj.get("model") or requested_model
    if not stream:
        out = dict(obj, id=reply_id, created=created, model=model, object="chat.completion")
        return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode(), JSON
    return sse_from_completion(dict(obj, id=reply_id, created=created, model=model), include_usage), SSE
