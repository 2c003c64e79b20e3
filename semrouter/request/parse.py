"""OpenAI chat-completions body → a typed `ChatRequest`, or a user-facing `RequestError`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from semrouter.request.errors import RequestError

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
ClassifyText = Literal["last_user", "all_user", "conversation"]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A parsed, validated chat-completions request. `body` is the full JSON object."""

    body: dict[str, Any]
    model: str
    messages: tuple[dict[str, Any], ...]
    stream: bool

    @property
    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return content_text(m.get("content"))
        return ""

    def text_for(self, which: ClassifyText) -> str:
        """The text the signals look at (see `routing.classify_text`)."""
        if which == "last_user":
            return self.last_user_text
        if which == "all_user":
            return "\n".join(content_text(m.get("content")) for m in self.messages if m.get("role") == "user")
        return "\n".join(
            f"{m.get('role')}: {content_text(m.get('content'))}" for m in self.messages if m.get("content")
        )


def content_text(content: Any) -> str:
    """Plain text of a message's content (a string or a list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def check_content_type(content_type: str | None) -> None:
    """Only JSON bodies are routed; anything else is refused with 415 (documented in README)."""
    if content_type is None:
        return  # many clients omit it; the body itself is still checked
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise RequestError(
            415,
            f"Content-Type must be application/json, got {media or 'empty'!r}",
            "invalid_request_error",
            "unsupported_media_type",
        )


def parse_chat_request(raw: bytes, max_bytes: int) -> ChatRequest:
    if len(raw) > max_bytes:
        raise RequestError(
            413,
            f"Request body is {len(raw)} bytes; the limit is {max_bytes} bytes",
            "invalid_request_error",
            "request_too_large",
        )
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RequestError(400, f"Request body is not valid JSON: {e}", "invalid_request_error", "invalid_json") from None
    if not isinstance(body, dict):
        raise _bad("Request body must be a JSON object", None)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("'model' must be a non-empty string", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' must be a non-empty array", "messages")
    for i, m in enumerate(messages):
        _check_message(i, m)
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise _bad("'stream' must be a boolean", "stream")
    for key, kind, name in (("temperature", (int, float), "a number"), ("n", int, "an integer"),
                            ("max_tokens", int, "an integer"), ("top_p", (int, float), "a number")):
        v = body.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, kind)):
            raise _bad(f"'{key}' must be {name}", key)
    return ChatRequest(body=body, model=model.strip(), messages=tuple(messages), stream=bool(stream))


def _check_message(i: int, m: Any) -> None:
    if not isinstance(m, dict):
        raise _bad(f"messages[{i}] must be an object", f"messages[{i}]")
    role = m.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise _bad(f"messages[{i}].role must be one of {sorted(_ROLES)}", f"messages[{i}].role")
    content = m.get("content")
    if content is None:
        if role == "assistant" and (m.get("tool_calls") or m.get("function_call")):
            return
        raise _bad(f"messages[{i}].content is required", f"messages[{i}].content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise _bad(f"messages[{i}].content[{j}] must be an object with a 'type'", f"messages[{i}].content")
    elif not isinstance(content, str):
        raise _bad(f"messages[{i}].content must be a string or an array of parts", f"messages[{i}].content")


def _bad(message: str, param: str | None) -> RequestError:
    return RequestError(400, message, "invalid_request_error", "invalid_value", param)
