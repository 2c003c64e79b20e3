"""Anthropic Messages answers and errors ↔ the router's internal answer (one `chat.completion` object).

`render` writes a chat.completion as a `message` object (a fresh `msg_` id per reply; content blocks: `thinking` from
reasoning_content, `text`, `tool_use` with `input` parsed from the call's JSON arguments), or as the
Messages event stream: message_start (usage with the input tokens), per block content_block_start,
content_block_delta (text_delta pieces of at most 64 characters, thinking_delta, input_json_delta),
content_block_stop; then message_delta (stop_reason, output tokens) and message_stop. Each event is sent
as `event: <type>` + `data: <json>`. finish_reason -> stop_reason: stop -> end_turn, length -> max_tokens,
tool_calls -> tool_use, content_filter -> refusal.

`to_completion` reads an upstream answer (a `message` JSON object or the event stream, which must end
with message_stop) back into a chat.completion; `error_body` renders an error in Anthropic's shape
(`{"type": "error", "error": {"type": ..., "message": ...}}`, type from the HTTP status).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from semrouter.response.openai import pieces
from semrouter.response.sse import event_data

_STOP_OF = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
_FINISH_OF = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
              "refusal": "content_filter"}
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 415: "invalid_request_error",
                429: "rate_limit_error", 500: "api_error", 503: "overloaded_error", 529: "overloaded_error"}


def model_object(name: str) -> dict[str, Any]:
    """One entry of Anthropic's model list (also GET /v1/models/{id} for an Anthropic client)."""
    return {"type": "model", "id": name, "display_name": name, "created_at": "1970-01-01T00:00:00Z"}


def models_list(names: list[str]) -> dict[str, Any]:
    """Anthropic's model list page: every name on one page."""
    return {"data": [model_object(n) for n in names], "has_more": False,
            "first_id": names[0] if names else None, "last_id": names[-1] if names else None}


def error_body(status: int, message: str) -> bytes:
    """An error in Anthropic's shape; the type follows the status (4xx default invalid_request_error)."""
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def message_object(obj: dict[str, Any], model: str) -> dict[str, Any]:
    """A chat.completion (first choice) → an Anthropic `message` object with a fresh `msg_` id."""
    choice = (obj.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    blocks: list[dict[str, Any]] = []
    thinking = msg.get("reasoning_content") or msg.get("reasoning")
    if isinstance(thinking, str) and thinking:
        blocks.append({"type": "thinking", "thinking": thinking, "signature": msg.get("thinking_signature", "")})
    text = msg.get("content") if isinstance(msg.get("content"), str) else msg.get("refusal")
    if isinstance(text, str) and (text or not msg.get("tool_calls")):
        blocks.append({"type": "text", "text": text})
    for tc in msg.get("tool_calls") or ():
        fn = tc.get("function") or {}
        try:
            args = json.loads(fn.get("arguments") or "{}")
        except ValueError:
            args = {}
        blocks.append({"type": "tool_use", "id": tc.get("id") or f"toolu_{uuid.uuid4().hex[:24]}",
                       "name": fn.get("name", ""), "input": args if isinstance(args, dict) else {}})
    u = obj.get("usage") or {}
    # A fresh id per reply: a cached answer replayed twice is two messages (Anthropic ids are unique; unlike a
    # Responses id, no later request names a message id, so nothing needs the upstream's).
    return {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": model,
            "content": blocks,
            "stop_reason": _STOP_OF.get(choice.get("finish_reason") or "stop", "end_turn"), "stop_sequence": None,
            "usage": {"input_tokens": int(u.get("prompt_tokens", 0)),
                      "output_tokens": int(u.get("completion_tokens", 0))}}


def render(obj: dict[str, Any], stream: bool, model: str) -> tuple[bytes, str]:
    """(body, content type): the chat.completion as a Messages answer, JSON or SSE."""
    message = message_object(obj, model)
    if not stream:
        return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode(), "application/json"
    return sse(message), "text/event-stream"


def sse(message: dict[str, Any]) -> bytes:
    """The Messages event stream that builds `message` (see module docstring)."""
    usage = message["usage"]
    start = dict(message, content=[], stop_reason=None, stop_sequence=None,
                 usage={"input_tokens": usage["input_tokens"], "output_tokens": 0})
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for i, b in enumerate(message["content"]):
        if b["type"] == "text":
            events.append({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}})
            events += [{"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": p}}
                       for p in pieces(b["text"])]
        elif b["type"] == "thinking":
            events.append({"type": "content_block_start", "index": i,
                           "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
            events += [{"type": "content_block_delta", "index": i, "delta": {"type": "thinking_delta", "thinking": p}}
                       for p in pieces(b["thinking"])]
            events.append({"type": "content_block_delta", "index": i,
                           "delta": {"type": "signature_delta", "signature": b.get("signature", "")}})
        else:
            events.append({"type": "content_block_start", "index": i, "content_block": dict(b, input={})})
            events.append({"type": "content_block_delta", "index": i, "delta": {
                "type": "input_json_delta", "partial_json": json.dumps(b["input"], ensure_ascii=False)}})
        events.append({"type": "content_block_stop", "index": i})
    events.append({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                   "usage": {"output_tokens": usage["output_tokens"]}})
    events.append({"type": "message_stop"})
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e, ensure_ascii=False, separators=(',', ':'))}\n\n"
                   for e in events).encode()


def to_completion(content_type: str, body: bytes) -> dict[str, Any] | None:
    """An upstream Messages answer (JSON or SSE) → chat.completion, or None if incomplete or an error."""
    try:
        if content_type.split(";", 1)[0].strip().lower() == "text/event-stream":
            message = _assemble(body.decode("utf-8"))
        else:
            message = json.loads(body)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(message, dict) or message.get("type") != "message" \
            or message.get("stop_reason") not in _FINISH_OF:
        return None
    msg: dict[str, Any] = {"role": "assistant", "content": None}
    texts, thinking, calls = [], [], []
    for b in message.get("content") or ():
        t = b.get("type") if isinstance(b, dict) else None
        if t == "text":
            texts.append(str(b.get("text", "")))
        elif t == "thinking":
            thinking.append(str(b.get("thinking", "")))
            msg["thinking_signature"] = str(b.get("signature", ""))  # replayed, so a client can send it back
        elif t == "tool_use":
            calls.append({"id": _str(b.get("id")), "type": "function", "function": {
                "name": _str(b.get("name")), "arguments": json.dumps(b.get("input") or {}, ensure_ascii=False)}})
        else:
            return None  # redacted thinking, server tools: not replayable
    if texts:
        msg["content"] = "".join(texts)
    if thinking:
        msg["reasoning_content"] = "".join(thinking)
    if calls:
        msg["tool_calls"] = calls
    u = message.get("usage") or {}
    pt, ct = int(u.get("input_tokens", 0)), int(u.get("output_tokens", 0))
    return {"id": _str(message.get("id")), "object": "chat.completion", "created": int(time.time()),
            "model": _str(message.get("model")),
            "choices": [{"index": 0, "message": msg, "finish_reason": _FINISH_OF[message["stop_reason"]]}],
            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _assemble(text: str) -> dict[str, Any] | None:
    """The message an event stream builds, or None unless it ends with message_stop."""
    message: dict[str, Any] | None = None
    partial: dict[int, str] = {}
    stopped = False
    for data in event_data(text):
        e = json.loads(data)
        t = e.get("type")
        if t == "message_start":
            message = dict(e["message"], content=[])
        elif message is None or t == "error":
            return None
        elif t == "content_block_start":
            message["content"].append(dict(e["content_block"]))
        elif t == "content_block_delta":
            b, d = message["content"][e["index"]], e["delta"]
            if d.get("type") == "text_delta":
                b["text"] = b.get("text", "") + d["text"]
            elif d.get("type") == "thinking_delta":
                b["thinking"] = b.get("thinking", "") + d["thinking"]
            elif d.get("type") == "signature_delta":
                b["signature"] = d["signature"]
            elif d.get("type") == "input_json_delta":
                partial[e["index"]] = partial.get(e["index"], "") + d["partial_json"]
        elif t == "message_delta":
            message.update({k: v for k, v in (e.get("delta") or {}).items() if k in ("stop_reason", "stop_sequence")})
            message["usage"] = {**(message.get("usage") or {}), **(e.get("usage") or {})}
        elif t == "message_stop":
            stopped = True
    if message is None or not stopped:
        return None
    for i, js in partial.items():
        message["content"][i]["input"] = json.loads(js) if js else {}
    return message
