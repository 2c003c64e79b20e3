"""Answers and errors in the client's API: the router holds one answer shape (chat.completion) and one
error shape (OpenAI's); these functions write them as chat completions, Responses or Anthropic Messages.

Sources: OpenAI API reference (chat completions, Responses and its streaming events), Anthropic
Messages API reference (messages, streaming, errors).
"""

from __future__ import annotations

import json
from typing import Any

from semrouter.request.errors import error_body as openai_error_body
from semrouter.request.parse import Api
from semrouter.response import anthropic, openai, responses_api


def render(api: Api, obj: dict[str, Any], stream: bool, model: str, include_usage: bool = True) -> tuple[bytes, str]:
    """(body, content type): a chat.completion as `api`'s answer; `stream` gives that API's SSE events."""
    if api == "responses":
        return responses_api.render(obj, stream, model)
    if api == "messages":
        return anthropic.render(obj, stream, model)
    obj = dict(obj, model=obj.get("model") or model)
    if stream:
        return openai.sse_from_completion(obj, include_usage), "text/event-stream"
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode(), "application/json"


def to_completion(api: Api, content_type: str, body: bytes) -> dict[str, Any] | None:
    """An upstream answer of `api` (JSON or SSE) as a chat.completion; None when incomplete or not an answer.
    Chat answers are read by the cache itself (cache/replies.py), so "chat" gives None here. Never raises:
    an upstream whose answer does not have the API's shape is simply not read (no usage, not cached)."""
    try:
        if api == "responses":
            return responses_api.to_completion(content_type, body)
        if api == "messages":
            return anthropic.to_completion(content_type, body)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError):
        return None
    return None


def error_body(api: Api, status: int, message: str, type_: str, code: str, param: str | None = None) -> bytes:
    """An error body in `api`'s shape (OpenAI's for chat and Responses, Anthropic's for Messages)."""
    if api == "messages":
        return anthropic.error_body(status, message)
    return openai_error_body(message, type_, code, param)
