"""OpenAI Responses (`POST /v1/responses`) body ↔ the router's internal chat-completions request.

Conversion (`to_chat`): `instructions` becomes a leading system message; `input` as a string becomes one
user message; `input` as items becomes messages in order:

* message items (`{"role": ..., "content": str | parts}`, with or without `"type": "message"`): parts
  `input_text`/`output_text` become text parts, `input_image` an `image_url` part, `refusal` a text part;
  other parts (files, audio) are kept as non-text parts, so they count for the cache scope but not as text;
* `function_call` items become an assistant message with one `tool_calls` entry (`call_id` is its id);
* `function_call_output` items become a `tool` message (`tool_call_id` = `call_id`);
* every other typed item (reasoning, item_reference, built-in tool calls) becomes an assistant message with
  no text whose `item` is the item itself: it separates cache scopes but is never classified.

Every other field (`reasoning`, `tools`, `max_output_tokens`, `previous_response_id`, ...) is kept under
its name. Conversation state named by `previous_response_id` lives upstream: the router classifies and
caches on what this request carries (the new input items), with `previous_response_id` part of the cache
scope, so a repeat only hits within the same upstream conversation.

Rewrite (`rewrite`): `model`; the reasoning switch as `reasoning.effort` (models whose family is
`reasoning_effort`) or `chat_template_kwargs` (as for chat); a category system prompt as `instructions`
(insert: before the client's instructions; replace: instead of them).
"""

from __future__ import annotations

from typing import Any

from semrouter.config.schema import Model, SystemPrompt
from semrouter.request import body_json
from semrouter.request.parse import ChatRequest
from semrouter.request.validate import check_model, check_no_request_template, invalid_value

_ROLES = frozenset({"user", "assistant", "system", "developer"})
_CONTENT_FIELDS = frozenset({"input", "instructions"})
_TEXT_PARTS = frozenset({"input_text", "output_text"})


def parse(body: dict[str, Any]) -> ChatRequest:
    """A validated Responses body (a JSON object) → `ChatRequest` (api "responses"); `RequestError` 400 names
    the offending field (`param`) in OpenAI's error shape."""
    model = check_model(body)
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid_value("'instructions' must be a string", "instructions")
    raw_input = body.get("input")
    messages: list[dict[str, Any]] = [{"role": "system", "content": instructions}] if instructions else []
    if isinstance(raw_input, str):
        if not raw_input.strip() and not body.get("previous_response_id"):
            raise invalid_value("'input' must not be empty", "input")
        messages.append({"role": "user", "content": raw_input})
    elif isinstance(raw_input, list) and raw_input:
        messages.extend(_item(i, item) for i, item in enumerate(raw_input))
    else:
        raise invalid_value("'input' must be a non-empty string or a non-empty array of input items", "input")
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise invalid_value("'stream' must be a boolean", "stream")
    reasoning = body.get("reasoning")
    if reasoning is not None and (not isinstance(reasoning, dict)
                                  or not isinstance(reasoning.get("effort", ""), (str, type(None)))):
        raise invalid_value("'reasoning' must be an object whose 'effort' is a string", "reasoning")
    prev = body.get("previous_response_id")
    if prev is not None and (not isinstance(prev, str) or not prev.strip()):
        raise invalid_value("'previous_response_id' must be a non-empty string", "previous_response_id")
    for key, kind, name in (("temperature", (int, float), "a number"), ("top_p", (int, float), "a number"),
                            ("max_output_tokens", int, "an integer")):
        v = body.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, kind)):
            raise invalid_value(f"'{key}' must be {name}", key)
    if body.get("tools") is not None and not isinstance(body["tools"], list):
        raise invalid_value("'tools' must be an array", "tools")
    check_no_request_template(body)  # chat_template_kwargs is merged into when the reasoning switch is set (rewrite)
    chat = {k: v for k, v in body.items() if k not in _CONTENT_FIELDS}
    chat["messages"] = messages
    return ChatRequest(body=chat, model=model, messages=tuple(messages), stream=bool(stream),
                       api="responses", source=body)


def _item(i: int, item: Any) -> dict[str, Any]:
    where = f"input[{i}]"
    if not isinstance(item, dict):
        raise invalid_value(f"{where} must be an object", where)
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise invalid_value(f"{where}.role must be one of {sorted(_ROLES)}", f"{where}.role")
        return {"role": role, "content": _content(where, item.get("content"))}
    if kind == "function_call":
        for f in ("call_id", "name", "arguments"):
            if not isinstance(item.get(f), str):
                raise invalid_value(f"{where}.{f} must be a string", f"{where}.{f}")
        return {"role": "assistant", "content": None, "tool_calls": [
            {"id": item["call_id"], "type": "function",
             "function": {"name": item["name"], "arguments": item["arguments"]}}]}
    if kind == "function_call_output":
        if not isinstance(item.get("call_id"), str):
            raise invalid_value(f"{where}.call_id must be a string", f"{where}.call_id")
        output = item.get("output")
        if not isinstance(output, (str, list)):
            raise invalid_value(f"{where}.output must be a string or an array", f"{where}.output")
        return {"role": "tool", "tool_call_id": item["call_id"],
                "content": output if isinstance(output, str) else _content(f"{where}.output", output)}
    if not isinstance(kind, str) or not kind:
        raise invalid_value(f"{where}.type must be a string", f"{where}.type")
    return {"role": "assistant", "content": None, "item": item}


def _content(where: str, content: Any) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid_value(f"{where}.content must be a string or an array of content parts", f"{where}.content")
    parts: list[dict[str, Any]] = []
    for j, p in enumerate(content):
        if not isinstance(p, dict) or not isinstance(p.get("type"), str):
            raise invalid_value(f"{where}.content[{j}] must be an object with a 'type'", f"{where}.content")
        t = p["type"]
        if t in _TEXT_PARTS or t == "refusal":
            text = p.get("text") if t != "refusal" else p.get("refusal")
            if not isinstance(text, str):
                raise invalid_value(f"{where}.content[{j}] needs a string text", f"{where}.content")
            parts.append({"type": "text", "text": text})
        elif t == "input_image":
            parts.append({"type": "image_url", "image_url": {"url": p.get("image_url") or f"file:{p.get('file_id')}",
                                                             "detail": p.get("detail", "auto")}})
        else:
            parts.append(dict(p))
    return parts


def rewrite(source: dict[str, Any], model: Model, use_reasoning: bool | None,
            system_prompt: SystemPrompt | None) -> bytes:
    """The client's Responses body for the upstream (see module docstring); `use_reasoning` None leaves
    reasoning fields as sent."""
    out = dict(source)
    out["model"] = model.name
    fam = model.reasoning_family
    if fam is not None and use_reasoning is not None:
        if fam.type == "chat_template_kwargs":
            out["chat_template_kwargs"] = {**(out.get("chat_template_kwargs") or {}), fam.parameter: use_reasoning}
        else:
            reasoning = {k: v for k, v in (out.get("reasoning") or {}).items() if k != "effort"}
            if use_reasoning:
                reasoning["effort"] = fam.effort
            if reasoning:
                out["reasoning"] = reasoning
            else:
                out.pop("reasoning", None)
    if system_prompt is not None:
        own = out.get("instructions")
        if system_prompt.mode == "insert" and own:
            out["instructions"] = f"{system_prompt.text}\n\n{own}"
        else:
            out["instructions"] = system_prompt.text
    return body_json.dumps(out)

