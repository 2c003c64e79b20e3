"""Answers the router writes itself, in OpenAI's shapes (JSON completion or SSE chunk stream)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def completion(model: str, content: str, finish_reason: str = "stop",
               usage: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _event(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def sse_from_completion(comp: dict[str, Any], pieces: int = 8) -> bytes:
    """Replay a chat.completion as a valid SSE stream: role, content deltas, finish, usage, [DONE]."""
    base = {"id": comp.get("id") or new_id(), "object": "chat.completion.chunk",
            "created": comp.get("created") or int(time.time()), "model": comp.get("model", "")}
    out = []
    choices = comp.get("choices") or [{"index": 0, "message": {"role": "assistant", "content": ""},
                                       "finish_reason": "stop"}]
    for ch in choices:
        idx = ch.get("index", 0)
        msg = ch.get("message") or {}
        out.append(_event({**base, "choices": [{"index": idx, "delta": {"role": "assistant", "content": ""},
                                                "logprobs": None, "finish_reason": None}]}))
        text = msg.get("content") or ""
        step = max(1, -(-len(text) // pieces)) if text else 1
        for i in range(0, len(text), step):
            out.append(_event({**base, "choices": [{"index": idx, "delta": {"content": text[i:i + step]},
                                                    "logprobs": None, "finish_reason": None}]}))
        if msg.get("tool_calls"):
            out.append(_event({**base, "choices": [{"index": idx, "delta": {"tool_calls": [
                {**tc, "index": j} for j, tc in enumerate(msg["tool_calls"])]},
                "logprobs": None, "finish_reason": None}]}))
        out.append(_event({**base, "choices": [{"index": idx, "delta": {}, "logprobs": None,
                                                "finish_reason": ch.get("finish_reason") or "stop"}]}))
    if comp.get("usage"):
        out.append(_event({**base, "choices": [], "usage": comp["usage"]}))
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def refusal(model: str, message: str, stream: bool) -> tuple[bytes, str]:
    """A content-filter refusal: (body, content-type)."""
    comp = completion(model, message, finish_reason="content_filter")
    if stream:
        return sse_from_completion({**comp, "usage": None}, pieces=1), "text/event-stream"
    return json.dumps(comp).encode(), "application/json"


def models_list(names: list[str], created: int = 0) -> bytes:
    return json.dumps({"object": "list", "data": [
        {"id": n, "object": "model", "created": created, "owned_by": "semrouter"} for n in names
    ]}).encode()
