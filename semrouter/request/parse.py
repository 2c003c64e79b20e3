"""OpenAI chat-completions body → a typed `ChatRequest`, or a user-facing `RequestError`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from semrouter.request.errors import RequestError
from semrouter.request.validate import TEXT_PART_KEYS, check_chat_fields, load_json_object

ClassifyText = Literal["last_user", "all_user", "conversation"]
Api = Literal["chat", "responses", "messages"]  # /v1/chat/completions, /v1/responses, /v1/messages


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A parsed, validated request in the router's one internal shape: chat completions.

    `body` is a chat-completions JSON object. For the other APIs (`api` "responses" or "messages") it is
    the client's body converted (request/responses_api.py, request/anthropic.py): `messages` built from the
    API's content fields, every other field kept under its own name; `source` is then the client's own
    body, which is what gets rewritten and forwarded."""

    body: dict[str, Any]
    model: str
    messages: tuple[dict[str, Any], ...]
    stream: bool
    api: Api = "chat"
    source: dict[str, Any] | None = None

    @property
    def last_user_text(self) -> str:
        """The text of the last user message ("" when there is none)."""
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

    def unclassified_text(self, which: ClassifyText) -> str:
        """Every text the model reads that `text_for(which)` leaves out, one per line, tool definitions apart
        (`definitions_text`): vLLM's `documents` (`body_texts`); the system prompt, earlier turns, tool results
        (none of these for `conversation`); and in every message, the last user turn included, the text outside
        its content (`unread_texts`: tool call arguments, reasoning, kept Responses items). Scanned for PII by
        signals/pii/whole_request.py."""
        # in the order the model reads them, so that the tail of the analysis window (request/window.py) still
        # holds the latest turns of a long conversation
        left_out = body_texts(self.body)
        last = self.last_user_text if which == "last_user" else None
        for m in self.messages:
            t = content_text(m.get("content")) if which != "conversation" else ""
            if which == "all_user" and m.get("role") == "user":
                t = ""
            elif t and last is not None and m.get("role") == "user" and t == last:
                last, t = None, ""  # the classified message (an identical earlier one is the same text)
            if t:
                left_out.append(t)
            left_out += unread_texts(m)
        return "\n".join(left_out)

    def safety_texts(self, read: Sequence[str], which: ClassifyText) -> list[str]:
        """The texts the safety guard scores beside `text_for(which)` (signals.jailbreak.read), in priority order
        (the segment budget is spent in this order; signals/onnx/segments.plan_extra):
        1. `tool_results`: chat `tool`/`function` messages, Responses `function_call_output` and Messages
           `tool_result` blocks and server tool results (all arrive as `tool` messages), the text of Responses items
           kept as they came other than reasoning (MCP and custom tool outputs, shell output, search results), vLLM's
           `documents` and the string values of a Responses `prompt`'s `variables`; newest first, every one in the
           request (an agent's earlier results were read by the model too). Where indirect prompt injections
           arrive: web pages, e-mails, files an agent fetched. Then the `name`s of tool and assistant messages.
        2. `system`: the client's system/developer messages (Responses `instructions`, Messages `system`), the string
           values of `chat_template_kwargs` (a template may print them) and the system messages' `name`s; never the
           router's own category prompt (added when the body is rewritten, after this).
        3. `earlier_user`: a last message that is an assistant turn (a prefill: the model continues the client's
           text; trust18), then user turns before the last one, newest first; then the user messages' `name`s (the
           last user message's too: it is not part of its content).
        4. `assistant` (opt-in): the other assistant turns' text, newest first (a client writes its history, so a
           made-up assistant turn that agreed to drop its rules reaches the model as the model's own words).
        Texts already in the classified text are left out (`all_user` classifies every user turn, `conversation`
        every message: then nothing is added); empty and repeated texts are left out. Never raises."""
        if which == "conversation":
            return []
        parts = set(read)
        tools: list[str] = []
        system: list[str] = []
        users: list[str] = []
        last_user = max((i for i, m in enumerate(self.messages) if m.get("role") == "user"), default=-1)
        names: dict[str, list[str]] = {"tool": [], "system": [], "user": []}
        assistant: list[str] = []
        prefill = ""
        for i, m in enumerate(self.messages):
            role = m.get("role")
            if role == "assistant" and i == len(self.messages) - 1:
                prefill = content_text(m.get("content"))
            elif role == "assistant":
                assistant.append(content_text(m.get("content")))
            if role in ("tool", "function"):
                tools.append(content_text(m.get("content")))
            elif role in ("system", "developer"):
                system.append(content_text(m.get("content")))
            elif role == "user" and i != last_user and which == "last_user":
                users.append(content_text(m.get("content")))
            item = m.get("item")
            if isinstance(item, dict) and item.get("type") != "reasoning":
                tools.append("\n".join(string_values(item, _OPAQUE_KEYS)))
            if isinstance(m.get("name"), str) and m["name"]:  # a participant's name, which templates may print
                names["system" if role in ("system", "developer") else "user" if role == "user" else "tool"].append(
                    m["name"])
        docs = string_values(self.body.get("documents")) + prompt_variable_texts(self.body)
        system += ["\n".join(template_kwarg_texts(self.body)), "\n".join(names["system"])]
        out = ([*reversed(tools), *reversed(docs), "\n".join(names["tool"])] if "tool_results" in parts else []) \
            + (system if "system" in parts else []) \
            + ([prefill, *reversed(users), "\n".join(names["user"])] if "earlier_user" in parts else []) \
            + (list(reversed(assistant)) if "assistant" in parts else [])
        seen = {self.text_for(which)}
        kept = []
        for t in out:
            if t and t not in seen:
                seen.add(t)
                kept.append(t)
        return kept


    @property
    def definitions_text(self) -> str:
        """The tool definitions as the PII scan reads them (`definition_texts`), one string per line: the body's, and a
        `developer` message's own `tools` (vLLM passes them to the chat template; review16)."""
        own = [m.get("tools") for m in self.messages if m.get("role") == "developer"]
        return "\n".join([*definition_texts(self.body), *string_values(own, _SAMPLE_KEYS)])


def content_text(content: Any) -> str:
    """Plain text of a message's content (a string or a list of typed parts), in part order: every part an upstream
    reads as text (`text`, `input_text`, `output_text`, `refusal`, `thinking`), and the text of Messages `document`
    (text or content source) and `search_result` blocks, which the model reads as the user's text (review15: a
    jailbreak in an `input_text` part or a document was not scored). Parts of other APIs are kept as they came
    (request/responses_api.py), so a `text` part's `text` may be any JSON value: only strings count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in map(_part_text, content) if t)
    return ""


def unread_texts(message: Mapping[str, Any]) -> list[str]:
    """Text in `message` that the model reads but `content_text` leaves out: the `arguments` of its tool calls
    (chat `tool_calls` and `function_call`; Messages `tool_use` and Responses `function_call` items arrive as
    these), an assistant turn's `reasoning` / `reasoning_content` and any message's `name` (vLLM passes them to the
    template, which may print them; trust18: an SSN as a user message's name reached a strict model), and the text
    of a Responses item the conversion keeps as it came (`item`: reasoning summaries, custom and MCP tool calls and
    outputs, shell output, ...; ids, states and opaque data left out)."""
    out: list[str] = []
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
            out.append(fn["arguments"])
    legacy = message.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get("arguments"), str):
        out.append(legacy["arguments"])
    out += (message[k] for k in ("reasoning", "reasoning_content", "name") if isinstance(message.get(k), str))
    out += string_values(message.get("item"), _OPAQUE_KEYS)  # a Responses item kept as it came (request/responses_api.py)
    return [t for t in out if t]


# Keys of a kept Responses item (reasoning, custom or MCP tool calls and outputs, shell output, search results, ...)
# whose strings are ids, states or opaque data, not text a model reads (`result`: an image generation's base64).
_OPAQUE_KEYS = frozenset({"type", "id", "call_id", "status", "encrypted_content", "result", "image_url",
                          "server_label", "approval_request_id"})


# Body fields of tool definitions (names, descriptions, parameter schemas; every API keeps its own under these
# names): the application's documentation for the model, read by the PII scan apart from the conversation (review16).
_DEFINITION_FIELDS = ("tools", "functions")
# JSON Schema keywords whose values are a field's sample or allowed values (`"examples": ["+14155552671"]`), not
# data about anyone.
_SAMPLE_KEYS = frozenset({"example", "examples", "default", "enum", "const", "pattern"})


def body_texts(body: Mapping[str, Any]) -> list[str]:
    """Every string value (not object keys) inside the body's `documents` (vLLM's RAG documents, which its chat
    templates put into the prompt: data, read as the conversation is), in order; then the string values of
    `chat_template_kwargs` (`template_kwarg_texts`) and of a Responses `prompt`'s `variables`
    (`prompt_variable_texts`): trust18, both reached the model unscanned."""
    return string_values(body.get("documents")) + template_kwarg_texts(body) + prompt_variable_texts(body)


def template_kwarg_texts(body: Mapping[str, Any]) -> list[str]:
    """The string values inside `chat_template_kwargs` (at any depth; not keys): a chat template that prints a
    kwarg (custom instructions, a persona, a date) puts it into the prompt. Booleans and numbers (the reasoning
    switches) are not text. The request's own `chat_template` is refused before this (validate.py)."""
    kwargs = body.get("chat_template_kwargs")
    return string_values(kwargs) if isinstance(kwargs, dict) else []


# Keys of a Responses prompt variable that is an input part (`input_image`, `input_file`) whose strings are
# references or binary data, not text the model reads.
_VARIABLE_OPAQUE_KEYS = frozenset({"type", "file_id", "file_data", "file_url", "image_url", "detail", "filename"})


def prompt_variable_texts(body: Mapping[str, Any]) -> list[str]:
    """The text a Responses `prompt` (a stored prompt template: `{"id", "version", "variables"}`) adds to the
    request: its `variables`' string values and `input_text` parts' text, in order (not the template's id and
    version, nor images and files). The stored template itself is the operator's and is not seen here."""
    prompt = body.get("prompt")
    variables = prompt.get("variables") if isinstance(prompt, dict) else None
    return string_values(variables, _VARIABLE_OPAQUE_KEYS) if isinstance(variables, dict) else []


def definition_texts(body: Mapping[str, Any]) -> list[str]:
    """Every string value (not object keys) inside the body's tool definitions (`tools`, `functions`), in order,
    without the values of JSON Schema's sample keywords (`_SAMPLE_KEYS`, at any depth)."""
    return string_values([body.get(k) for k in _DEFINITION_FIELDS], _SAMPLE_KEYS)


def string_values(root: Any, skip: frozenset[str] = frozenset(),
                  skip_types: frozenset[str] = frozenset()) -> list[str]:
    """Every non-empty string value inside `root` (a JSON value), in document order, without object keys, without
    the values of keys in `skip` and without objects whose `type` is in `skip_types` (at any depth). Never raises;
    iterative (any depth)."""
    out: list[str] = []
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if node:
                out.append(node)
        elif isinstance(node, dict):
            kind = node.get("type")
            if skip_types and isinstance(kind, str) and kind in skip_types:
                continue
            stack.extend(reversed([v for k, v in node.items() if k not in skip]))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return out


def _part_text(part: Any) -> str:
    """The plain text of one content part: a `text`, `input_text`, `output_text`, `refusal` or `thinking` part's text;
    the text a Messages `document` block carries (its `title` and `context`, and a `text` source's `data` or a
    `content` source's string or text blocks) or a `search_result` block (`title`, text blocks); '' for anything
    else (images, audio, base64 or URL files)."""
    if not isinstance(part, dict):
        return ""
    kind = part.get("type")
    if not isinstance(kind, str):  # nested blocks (tool results, documents) are not validated: any JSON value
        return ""
    if kind in TEXT_PART_KEYS:
        text = part.get(TEXT_PART_KEYS[kind])
        return text if isinstance(text, str) else ""
    if kind not in ("document", "search_result"):
        return ""
    texts = [part[k] for k in ("title", "context") if isinstance(part.get(k), str)]
    source = part.get("source")
    if kind == "search_result":
        texts.append(_blocks_text(part.get("content")))
    elif isinstance(source, dict) and source.get("type") == "text" and isinstance(source.get("data"), str):
        texts.append(source["data"])
    elif isinstance(source, dict) and source.get("type") == "content":
        texts.append(_blocks_text(source.get("content")))
    return "\n".join(t for t in texts if t)


def _blocks_text(blocks: Any) -> str:
    """A string, or the text of the `text` blocks in a list (Messages block content)."""
    if isinstance(blocks, str):
        return blocks
    return content_text(blocks) if isinstance(blocks, list) else ""


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


def check_content_encoding(content_encoding: str | None) -> None:
    """A compressed body (any `Content-Encoding` but identity) is refused with 415 `unsupported_content_encoding`:
    the router reads the JSON to route it and does not decompress (a small compressed body can expand past every
    size limit). Without this, gzip bytes read as a body that is "not valid JSON"."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    unsupported = [c for c in codings if c != "identity"]
    if unsupported:
        raise RequestError(415, f"Content-Encoding {', '.join(unsupported)} is not supported; send the JSON body "
                           "uncompressed", "invalid_request_error", "unsupported_content_encoding")


def parse_chat_request(raw: bytes, max_bytes: int) -> ChatRequest:
    """Raw body → `ChatRequest`. Errors (`RequestError`): 413 over `max_bytes`, 400 `invalid_json`, 400
    `invalid_value` naming the field (semrouter/request/validate.py)."""
    body = load_json_object(raw, max_bytes)
    check_chat_fields(body)
    return ChatRequest(body=body, model=body["model"].strip(), messages=tuple(body["messages"]),
                       stream=bool(body.get("stream")))
