"""Answers the router writes itself, in OpenAI's shapes (JSON completion or SSE chunk stream)."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any


def new_id() -> str:
    """A fresh chat completion id: "chatcmpl-" and 24 hex characters."""
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def completion(model: str, content: str, finish_reason: str = "stop",
               usage: dict[str, int] | None = None) -> dict[str, Any]:
    """A `chat.completion` object with one assistant message (`content`), a fresh id and the current time;
    usage zeros when not given."""
    return {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


_PIECE = 64
_WORDS = re.compile(r"\s*\S+\s*|\s+")


def pieces(text: str) -> list[str]:
    """Pieces of at most _PIECE characters, cut after whitespace where possible; they join to `text`."""
    out: list[str] = []
    cur = ""
    for word in _WORDS.findall(text):
        if cur and len(cur) + len(word) > _PIECE:
            out.append(cur)
            cur = ""
        cur += word
        while len(cur) > _PIECE:
            out.append(cur[:_PIECE])
            cur = cur[_PIECE:]
    if cur:
        out.append(cur)
    return out


_NO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def sse_from_completion(obj: dict[str, Any], include_usage: bool = True) -> bytes:
    """Replay a chat.completion as a valid SSE stream of chat.completion.chunk events: per choice a role
    chunk, the text in pieces of at most 64 characters, tool calls in one delta, a finish chunk; then a
    usage chunk with `choices: []` when `include_usage` and `data: [DONE]`. OpenAI sends that usage chunk whenever
    the client asked for it, so it is always there then: the answer's own `usage`, or zero counts when the answer
    carries none (a cache hit whose entry came from a stream without usage: nothing was generated for this reply)."""
    base: dict[str, Any] = {"id": obj.get("id") or new_id(), "object": "chat.completion.chunk",
                            "created": obj.get("created") or int(time.time()), "model": obj.get("model", "")}
    if obj.get("system_fingerprint"):
        base["system_fingerprint"] = obj["system_fingerprint"]
    events: list[dict[str, Any]] = []
    for c in obj.get("choices", ()):
        i = c.get("index", 0)
        msg = c.get("message") or {}
        events.append({**base, "choices": [{"index": i, "delta": {"role": msg.get("role", "assistant"),
                                                                   "content": ""}, "finish_reason": None}]})
        for field in ("reasoning_content", "reasoning", "content", "refusal"):
            if isinstance(msg.get(field), str):
                for piece in pieces(msg[field]):
                    events.append({**base, "choices": [{"index": i, "delta": {field: piece}, "finish_reason": None}]})
        if msg.get("tool_calls"):
            calls = [dict(tc, index=k) for k, tc in enumerate(msg["tool_calls"])]
            events.append({**base, "choices": [{"index": i, "delta": {"tool_calls": calls}, "finish_reason": None}]})
        events.append({**base, "choices": [{"index": i, "delta": {}, "finish_reason": c.get("finish_reason")}]})
    if include_usage:
        usage = obj["usage"] if isinstance(obj.get("usage"), dict) else dict(_NO_USAGE)
        events.append({**base, "choices": [], "usage": usage})
    lines = [f"data: {json.dumps(e, ensure_ascii=False, separators=(',', ':'))}\n\n" for e in events]
    lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def model_object(name: str, created: int = 0) -> dict[str, Any]:
    """One entry of /v1/models (also the answer to GET /v1/models/{id})."""
    return {"id": name, "object": "model", "created": created, "owned_by": "semrouter"}


def models_list(names: list[str], created: int = 0) -> bytes:
    """GET /v1/models's answer as JSON bytes: `{"object": "list", "data": [model objects]}`."""
    return json.dumps({"object": "list", "data": [model_object(n, created) for n in names]}).encode()
