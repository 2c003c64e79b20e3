"""Field validation for request bodies: hostile bytes in, a clean JSON object or a 400 naming the field out.

Shared by every API the router accepts (chat completions here; the Responses and Anthropic Messages
parsers call the same helpers), so each converts into the internal request only after these checks.

Two layers:

* `load_json_object(raw, max_bytes)`: bytes → dict. Refuses (400 `invalid_json`) what `json.loads` would
  accept but the rest of the path cannot carry: bodies that are not UTF-8, lone UTF-16 surrogates
  (`"\\ud800"`, not encodable as UTF-8, so the rewritten body could not be sent), `NaN`/`Infinity` and
  numbers that overflow to them (not JSON: the upstream would get invalid JSON), number literals longer than
  `MAX_NUMBER_CHARS` (Python refuses to convert ints over 4,300 digits), nesting deeper than `MAX_DEPTH`, and more
  than `MAX_CONTAINERS` arrays and objects (checked on the bytes, before they are built).
  Over `max_bytes` is 413 `request_too_large`.
* field checks (`check_chat_fields` and the `want_*` helpers): every field the router reads or rewrites has
  the type (and range) the OpenAI API documents, else 400 `invalid_value` with `param` set to the field's path
  (`messages[2].content[0].text`). Unknown fields are passed through untouched (vendor extensions).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from semrouter.request.errors import RequestError

MAX_DEPTH = 64  # objects/arrays inside each other; a tool's JSON schema rarely passes 10
# Arrays and objects in one body. Building them is what costs: a 4 MB body of 33,000 arrays nested 61 deep (2 million
# lists) held the event loop 6 s (load 3-10), 1 million empty arrays 1.2 s, while 4 MB of text parses in 7 ms
# (review16). An agent's body of 2,048 messages with tool calls and 200 tool schemas holds fewer than 20,000.
MAX_CONTAINERS = 100_000
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
MAX_NUMBER_CHARS = 100  # characters in one JSON number literal
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


class _Reject(ValueError):
    """Raised from inside json.loads' hooks; becomes a 400 invalid_json."""


def invalid_value(message: str, param: str | None) -> RequestError:
    """A 400 `invalid_value` error naming `param` (OpenAI shape)."""
    return RequestError(400, message, "invalid_request_error", "invalid_value", param)


def _invalid_json(message: str) -> RequestError:
    return RequestError(400, f"Request body is not valid JSON: {message}", "invalid_request_error", "invalid_json")


def _number(text: str, convert: Callable[[str], Any]) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Reject(f"a number literal is {len(text)} characters long; the limit is {MAX_NUMBER_CHARS}")
    value = convert(text)
    if isinstance(value, float) and not math.isfinite(value):
        raise _Reject(f"the number {text[:20]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise _Reject(f"{name} is not a JSON value")


def load_json_object(raw: bytes, max_bytes: int) -> dict[str, Any]:
    """`raw` (UTF-8 JSON text) → its top-level object. Errors: 413 over `max_bytes`; 400 `missing_body` for an
    empty (or all-whitespace) body, however it was sent (a chunked body with no data, as `content-length: 0`);
    400 `invalid_json` for anything else that is not strict JSON (see the module docstring); 400 `invalid_value`
    for a non-object."""
    if len(raw) > max_bytes:
        raise RequestError(413, f"Request body is {len(raw)} bytes; the limit is {max_bytes} bytes",
                           "invalid_request_error", "request_too_large")
    if not raw.strip():
        raise RequestError(400, "Request body is empty; send a JSON object", "invalid_request_error", "missing_body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _invalid_json(f"not UTF-8 at byte {e.start}") from None
    containers = _containers(raw)
    if containers > MAX_CONTAINERS:
        raise _invalid_json(f"it holds {containers} arrays and objects; the limit is {MAX_CONTAINERS}")
    try:
        body = json.loads(text, parse_int=lambda s: _number(s, int), parse_float=lambda s: _number(s, float),
                          parse_constant=_constant)
    except _Reject as e:
        raise _invalid_json(str(e)) from None
    except json.JSONDecodeError as e:
        raise _invalid_json(f"{e.msg} (line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise _invalid_json(f"nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(body, dict):
        raise invalid_value("Request body must be a JSON object", None)
    escaped = (b"\\ud" in raw or b"\\uD" in raw) and _SURROGATE_ESCAPE.search(raw) is not None
    _check_tree(body, surrogates=escaped)
    return body


def _containers(raw: bytes) -> int:
    """How many arrays and objects `raw` (JSON text) opens: its `[` and `{` bytes, which bound it from above (C
    speed), and only when that bound passes MAX_CONTAINERS, those outside strings (one regex pass, tens of ms for
    4 MB)."""
    rough = raw.count(b"[") + raw.count(b"{")
    if rough <= MAX_CONTAINERS:
        return rough
    bare = _JSON_STRING.sub(b"", raw)
    return bare.count(b"[") + bare.count(b"{")


def _check_tree(root: dict[str, Any], surrogates: bool) -> None:
    """Depth limit and (when the raw text had a surrogate escape) lone surrogates, without recursion."""
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(root, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            raise _invalid_json(f"nested deeper than {MAX_DEPTH} levels")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in items:
            if surrogates and isinstance(k, str) and _SURROGATE.search(k):
                raise invalid_value("Object keys must not contain unpaired UTF-16 surrogates", param_path(path))
            if isinstance(v, (dict, list)):
                stack.append((v, depth + 1, (*path, k)))
            elif surrogates and isinstance(v, str) and _SURROGATE.search(v):
                raise invalid_value("Strings must not contain unpaired UTF-16 surrogates (\\ud800-\\udfff)",
                                    param_path((*path, k)))


def param_path(path: tuple[str | int, ...]) -> str | None:
    """('messages', 2, 'content') → 'messages[2].content'."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or None


# -- field helpers: each returns the value (None when absent or null) or raises invalid_value naming `param` --

def want_bool(obj: Mapping[str, Any], key: str, param: str | None = None) -> bool | None:
    """`obj[key]` as a boolean (None when absent or null); 400 `invalid_value` naming `param` (default `key`)."""
    v = obj.get(key)
    if v is not None and not isinstance(v, bool):
        raise invalid_value(f"'{param or key}' must be a boolean", param or key)
    return v


def want_str(obj: Mapping[str, Any], key: str, param: str | None = None, *, max_len: int | None = None,
             choices: tuple[str, ...] | None = None) -> str | None:
    """`obj[key]` as a string of at most `max_len` characters, one of `choices` when given (None when absent or
    null); 400 `invalid_value` naming `param` (default `key`) otherwise."""
    v, p = obj.get(key), param or key
    if v is None:
        return None
    if not isinstance(v, str):
        raise invalid_value(f"'{p}' must be a string", p)
    if max_len is not None and len(v) > max_len:
        raise invalid_value(f"'{p}' is longer than {max_len} characters", p)
    if choices is not None and v not in choices:
        raise invalid_value(f"'{p}' must be one of {list(choices)}", p)
    return v


def want_int(obj: Mapping[str, Any], key: str, lo: int, hi: int, param: str | None = None) -> int | None:
    """`obj[key]` as an integer in [lo, hi] (booleans are not integers; None when absent or null); 400
    `invalid_value` naming `param` (default `key`) otherwise."""
    v, p = obj.get(key), param or key
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise invalid_value(f"'{p}' must be an integer", p)
    if not lo <= v <= hi:
        raise invalid_value(f"'{p}' must be between {lo} and {hi}", p)
    return v


def want_number(obj: Mapping[str, Any], key: str, lo: float, hi: float, param: str | None = None) -> float | None:
    """`obj[key]` as a float in [lo, hi] (an integer or a finite float; booleans are not numbers; None when absent or
    null); 400 `invalid_value` naming `param` (default `key`) otherwise."""
    v, p = obj.get(key), param or key
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise invalid_value(f"'{p}' must be a number", p)
    if not lo <= v <= hi:
        raise invalid_value(f"'{p}' must be between {lo:g} and {hi:g}", p)
    return float(v)


def want_object(obj: Mapping[str, Any], key: str, param: str | None = None) -> dict[str, Any] | None:
    """`obj[key]` as a JSON object (None when absent or null); 400 `invalid_value` naming `param` otherwise."""
    v, p = obj.get(key), param or key
    if v is not None and not isinstance(v, dict):
        raise invalid_value(f"'{p}' must be an object", p)
    return v


def want_list(obj: Mapping[str, Any], key: str, param: str | None = None) -> list[Any] | None:
    """`obj[key]` as a JSON array (None when absent or null); 400 `invalid_value` naming `param` otherwise."""
    v, p = obj.get(key), param or key
    if v is not None and not isinstance(v, list):
        raise invalid_value(f"'{p}' must be an array", p)
    return v


_INT_MAX = 2**31 - 1
_NUMERIC: tuple[tuple[str, float, float], ...] = (
    ("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0), ("presence_penalty", -2.0, 2.0),
    ("frequency_penalty", -2.0, 2.0),
)


MAX_MESSAGES = 2048  # messages (or Responses input items) in one request; more is a 400, not event-loop time


def check_message_count(n: int, param: str) -> None:
    """Raises invalid_value when a request carries more than MAX_MESSAGES messages (each is validated, keyed
    and scanned on the router's event loop: 60,000 one-word messages held other requests for ~0.6 s)."""
    if n > MAX_MESSAGES:
        raise invalid_value(f"'{param}' has {n} items; at most {MAX_MESSAGES} are accepted", param)


MAX_MODEL_CHARS = 256


def check_model(body: Mapping[str, Any]) -> str:
    """The request's `model` (every API): a non-empty string of at most MAX_MODEL_CHARS characters, returned
    without surrounding whitespace. Raises invalid_value naming `model` (an unknown name is the decision's 404)."""
    model = want_str(body, "model", max_len=MAX_MODEL_CHARS)
    if model is None or not model.strip():
        raise invalid_value("'model' must be a non-empty string", "model")
    return model.strip()


def check_chat_fields(body: Mapping[str, Any]) -> None:
    """Chat-completions fields the router reads or rewrites (and their OpenAI types). Raises invalid_value."""
    check_model(body)
    messages = want_list(body, "messages")
    if not messages:
        raise invalid_value("'messages' must be a non-empty array", "messages")
    check_message_count(len(messages), "messages")
    for i, m in enumerate(messages):
        check_message(m, f"messages[{i}]")
    want_bool(body, "stream")
    options = want_object(body, "stream_options")
    if options is not None:
        want_bool(options, "include_usage", "stream_options.include_usage")
    want_int(body, "n", 1, 128)
    for key in ("max_tokens", "max_completion_tokens"):
        want_int(body, key, 1, _INT_MAX)
    for key, lo, hi in _NUMERIC:
        want_number(body, key, lo, hi)
    want_int(body, "seed", -(2**63), 2**64 - 1)
    want_bool(body, "logprobs")
    want_int(body, "top_logprobs", 0, 20)
    want_bool(body, "parallel_tool_calls")
    want_str(body, "user")
    want_object(body, "metadata")
    check_no_request_template(body)
    want_str(body, "reasoning_effort", choices=REASONING_EFFORTS)
    _check_stop(body.get("stop"))
    _check_tools(body)
    fmt = want_object(body, "response_format")
    if fmt is not None:
        want_str(fmt, "type", "response_format.type")
    bias = want_object(body, "logit_bias")
    for k in bias or {}:
        want_number(bias, k, -100, 100, f"logit_bias.{k}")


def check_message(m: Any, param: str) -> None:
    """One chat message: an object with a known role and string or typed-part content."""
    if not isinstance(m, dict):
        raise invalid_value(f"{param} must be an object", param)
    role = m.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise invalid_value(f"{param}.role must be one of {sorted(ROLES)}", f"{param}.role")
    want_str(m, "name", f"{param}.name")
    want_str(m, "tool_call_id", f"{param}.tool_call_id")
    calls = want_list(m, "tool_calls", f"{param}.tool_calls")
    for j, call in enumerate(calls or []):
        if not isinstance(call, dict):
            raise invalid_value(f"{param}.tool_calls[{j}] must be an object", f"{param}.tool_calls[{j}]")
    content = m.get("content")
    if content is None:
        if role == "assistant" and (m.get("tool_calls") or m.get("function_call")):
            return
        raise invalid_value(f"{param}.content is required", f"{param}.content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            check_content_part(part, f"{param}.content[{j}]")
    elif not isinstance(content, str):
        raise invalid_value(f"{param}.content must be a string or an array of parts", f"{param}.content")


# Chat content parts an upstream reads as text, and the key of their text: vLLM's chat parser takes `input_text` and
# `output_text` (the Responses names), `refusal` and `thinking` parts as text too, in any role, so a prompt sent in
# them is the prompt (review15: the router read only `text` parts, and an attack in an `input_text` part reached the
# model unscored; review16: the same in a `thinking` part).
TEXT_PART_KEYS = {"text": "text", "input_text": "text", "output_text": "text", "refusal": "refusal",
                  "thinking": "thinking"}


def check_no_request_template(body: Mapping[str, Any]) -> None:
    """`chat_template_kwargs` is an object, and no request brings its own chat template (`chat_template`, at the top
    level or inside `chat_template_kwargs`): a template is code that writes the prompt, so text it adds reaches the
    model past every signal the router runs (and vLLM's own trust_request_chat_template refuses it by default).
    400 `invalid_value` naming the field."""
    kwargs = want_object(body, "chat_template_kwargs")
    for where, holder in (("chat_template", body), ("chat_template_kwargs.chat_template", kwargs or {})):
        if holder.get("chat_template") is not None:
            raise invalid_value(f"{where}: a request's own chat template is not accepted (the router cannot check "
                                "what it writes into the prompt); use the server's template", where)


def check_content_part(part: Any, param: str) -> None:
    """A typed content part: an object with a string `type`; a part an upstream reads as text (`text`, `input_text`,
    `output_text`: `text`; `refusal`: `refusal`; `thinking`: `thinking`) has that field as a string, as the router
    reads it (parse.py)."""
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise invalid_value(f"{param} must be an object with a string 'type'", param)
    key = TEXT_PART_KEYS.get(part["type"])
    if key is not None and not isinstance(part.get(key), str):
        raise invalid_value(f"{param}.{key} must be a string", f"{param}.{key}")


def _check_stop(stop: Any) -> None:
    if stop is None or isinstance(stop, str):
        return
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise invalid_value("'stop' must be a string or an array of strings", "stop")


def _check_tools(body: Mapping[str, Any]) -> None:
    for i, tool in enumerate(want_list(body, "tools") or []):
        p = f"tools[{i}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise invalid_value(f"{p} must be an object with a string 'type'", p)
        fn = want_object(tool, "function", f"{p}.function")
        if tool["type"] == "function":
            if fn is None or not isinstance(fn.get("name"), str) or not fn["name"]:
                raise invalid_value(f"{p}.function.name must be a non-empty string", f"{p}.function.name")
            want_object(fn, "parameters", f"{p}.function.parameters")
    for i, fn in enumerate(want_list(body, "functions") or []):
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise invalid_value(f"functions[{i}] must be an object with a string 'name'", f"functions[{i}]")
    choice = body.get("tool_choice")
    if choice is not None and not isinstance(choice, (str, dict)):
        raise invalid_value("'tool_choice' must be a string or an object", "tool_choice")
