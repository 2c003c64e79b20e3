"""OpenAI Responses answers ↔ the router's internal answer (one `chat.completion` object).

`render` writes a chat.completion the router holds (a cache hit, a refusal) as a `response` object, or as
the typed SSE events of a streamed response: response.created, response.in_progress, then per output item
response.output_item.added, (for a message) response.content_part.added, response.output_text.delta pieces
of at most 64 characters, response.output_text.done, response.content_part.done, (for a function call)
response.function_call_arguments.delta/.done, response.output_item.done; and last response.completed
(or response.incomplete). Every event carries `sequence_number` and is sent as `event: <type>` +
`data: <json>`. finish_reason maps to status: stop/tool_calls -> completed; length -> incomplete
(max_output_tokens); content_filter -> incomplete (content_filter). Usage is input/output/total tokens.

`to_completion` reads an upstream answer (a `response` JSON object, or an SSE stream whose
response.completed / response.incomplete event carries the final response) back into a chat.completion:
message text -> content, refusal parts -> refusal, function_call items -> tool_calls, reasoning text ->
reasoning_content; the response `id` is kept, so a cached answer replays under the id the upstream
stored it with (a follow-up's `previous_response_id` then names a real upstream response). Failed,
cancelled or in-progress responses and streams without a final event give None (not cached).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from semrouter.response.openai import pieces
from semrouter.response.sse import event_data

_STATUS_OF = {"length": ("incomplete", "max_output_tokens"), "content_filter": ("incomplete", "content_filter")}
_FINISH_OF = {"max_output_tokens": "length", "content_filter": "content_filter"}


def new_id(prefix: str = "resp") -> str:
    """A fresh Responses id: `prefix`, "_" and 32 hex characters (e.g. resp_..., msg_...)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def response_object(obj: dict[str, Any], model: str) -> dict[str, Any]:
    """A chat.completion (first choice) → a Responses `response` object."""
    choice = (obj.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    reasoning = msg.get("reasoning_content") or msg.get("reasoning")
    if isinstance(reasoning, str):
        output.append({"id": new_id("rs"), "type": "reasoning", "summary": [],
                       "content": [{"type": "reasoning_text", "text": reasoning}]})
    content: list[dict[str, Any]] = []
    if isinstance(msg.get("content"), str) and (msg["content"] or not msg.get("tool_calls")):
        content.append({"type": "output_text", "text": msg["content"], "annotations": [], "logprobs": []})
    if isinstance(msg.get("refusal"), str):
        content.append({"type": "refusal", "refusal": msg["refusal"]})
    if content:
        output.append({"id": new_id("msg"), "type": "message", "status": "completed", "role": "assistant",
                       "content": content})
    for tc in msg.get("tool_calls") or ():
        fn = tc.get("function") or {}
        output.append({"id": new_id("fc"), "type": "function_call", "status": "completed",
                       "call_id": tc.get("id") or new_id("call"), "name": fn.get("name", ""),
                       "arguments": fn.get("arguments", "")})
    status, reason = _STATUS_OF.get(choice.get("finish_reason") or "stop", ("completed", None))
    u = obj.get("usage") or {}
    pt, ct = int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0))
    rid = obj.get("id") if str(obj.get("id", "")).startswith("resp_") else new_id()
    return {
        "id": rid, "object": "response", "created_at": int(obj.get("created") or time.time()),
        "status": status, "model": model, "output": output, "error": None,
        "incomplete_details": {"reason": reason} if reason else None,
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
        "usage": {"input_tokens": pt, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": ct, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": pt + ct},
    }


def render(obj: dict[str, Any], stream: bool, model: str) -> tuple[bytes, str]:
    """(body, content type): the chat.completion as a Responses answer, JSON or SSE."""
    resp = response_object(obj, model)
    if not stream:
        return json.dumps(resp, ensure_ascii=False, separators=(",", ":")).encode(), "application/json"
    return sse(resp), "text/event-stream"


def sse(resp: dict[str, Any]) -> bytes:
    """The typed event stream that builds `resp` (see module docstring)."""
    events: list[dict[str, Any]] = []
    start = dict(resp, status="in_progress", output=[], usage=None, incomplete_details=None)
    events += [{"type": "response.created", "response": start}, {"type": "response.in_progress", "response": start}]
    for oi, item in enumerate(resp["output"]):
        base = {"item_id": item["id"], "output_index": oi}
        if item["type"] == "message":
            events.append({"type": "response.output_item.added", "output_index": oi,
                           "item": dict(item, status="in_progress", content=[])})
            for ci, part in enumerate(item["content"]):
                empty = dict(part, text="") if part["type"] == "output_text" else dict(part, refusal="")
                events.append({"type": "response.content_part.added", **base, "content_index": ci, "part": empty})
                if part["type"] == "output_text":
                    for piece in pieces(part["text"]):
                        events.append({"type": "response.output_text.delta", **base, "content_index": ci,
                                       "delta": piece, "logprobs": []})
                    events.append({"type": "response.output_text.done", **base, "content_index": ci,
                                   "text": part["text"], "logprobs": []})
                else:
                    events.append({"type": "response.refusal.delta", **base, "content_index": ci,
                                   "delta": part["refusal"]})
                    events.append({"type": "response.refusal.done", **base, "content_index": ci,
                                   "refusal": part["refusal"]})
                events.append({"type": "response.content_part.done", **base, "content_index": ci, "part": part})
        elif item["type"] == "function_call":
            events.append({"type": "response.output_item.added", "output_index": oi,
                           "item": dict(item, status="in_progress", arguments="")})
            events.append({"type": "response.function_call_arguments.delta", **base, "delta": item["arguments"]})
            events.append({"type": "response.function_call_arguments.done", **base, "arguments": item["arguments"]})
        else:
            events.append({"type": "response.output_item.added", "output_index": oi, "item": item})
        events.append({"type": "response.output_item.done", "output_index": oi, "item": item})
    events.append({"type": "response.completed" if resp["status"] == "completed" else "response.incomplete",
                   "response": resp})
    out = []
    for n, e in enumerate(events):
        e["sequence_number"] = n
        out.append(f"event: {e['type']}\ndata: {json.dumps(e, ensure_ascii=False, separators=(',', ':'))}\n\n")
    return "".join(out).encode()


def to_completion(content_type: str, body: bytes) -> dict[str, Any] | None:
    """An upstream Responses answer (JSON or SSE) → chat.completion, or None if not complete (see above)."""
    try:
        if content_type.split(";", 1)[0].strip().lower() == "text/event-stream":
            resp = _final_event(body.decode("utf-8"))
        else:
            resp = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(resp, dict) or resp.get("object") != "response":
        return None
    status = resp.get("status")
    reason = (resp.get("incomplete_details") or {}).get("reason")
    if status == "completed":
        finish = "stop"
    elif status == "incomplete" and reason in _FINISH_OF:
        finish = _FINISH_OF[reason]
    else:
        return None
    msg: dict[str, Any] = {"role": "assistant", "content": None}
    texts, refusals, reasoning, calls = [], [], [], []
    for item in resp.get("output") or ():
        if not isinstance(item, dict):
            return None
        if item.get("type") == "message":
            for p in item.get("content") or ():
                if p.get("type") == "output_text":
                    texts.append(str(p.get("text", "")))
                elif p.get("type") == "refusal":
                    refusals.append(str(p.get("refusal", "")))
        elif item.get("type") == "function_call":
            calls.append({"id": _str(item.get("call_id")), "type": "function",
                          "function": {"name": _str(item.get("name")), "arguments": _str(item.get("arguments"))}})
        elif item.get("type") == "reasoning":
            reasoning += [str(c.get("text", "")) for c in item.get("content") or () if isinstance(c, dict)]
        else:
            return None  # a built-in tool's output cannot be replayed faithfully
    if texts:
        msg["content"] = "".join(texts)
    if refusals:
        msg["refusal"] = "".join(refusals)
    if reasoning:
        msg["reasoning_content"] = "".join(reasoning)
    if calls:
        msg["tool_calls"] = calls
        finish = "tool_calls" if finish == "stop" else finish
    u = resp.get("usage") or {}
    pt, ct = int(u.get("input_tokens", 0)), int(u.get("output_tokens", 0))
    created = resp.get("created_at")
    return {"id": _str(resp.get("id")), "object": "chat.completion",
            "created": created if type(created) is int else int(time.time()),
            "model": _str(resp.get("model")), "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _final_event(text: str) -> dict[str, Any] | None:
    for data in event_data(text, last_first=True):
        event = json.loads(data)
        if isinstance(event, dict) and event.get("type") in ("response.completed", "response.incomplete"):
            return event.get("response")
        return None  # the last event is not the final one: the stream was cut
    return None
