"""The demo upstream's OpenAI Responses (`POST /v1/responses`) and Anthropic Messages (`POST /v1/messages`)
endpoints, written from the two APIs' references (independently of the router's own renderers, so tests
through the router compare two implementations).

Both answer JSON, or with `stream: true` their event streams (Responses: response.created …
response.completed with sequence numbers; Messages: message_start, ping, content_block_*, message_delta,
message_stop). Responses are stored (unless `store: false`; the last 1,000) as a server does: a
`previous_response_id` it does not hold gets a 404, and `GET /v1/responses/{id}` returns a stored one. The
reply text, like chat's, echoes the last user text and names what the router set:
`effort=` (reasoning.effort), `thinking=` (Anthropic thinking budget), `template=` (chat_template_kwargs),
`system=` (instructions / system). Errors come in each API's own shape. `x-demo-status`, `x-demo-truncate`
and `x-demo-refuse` (Responses `incomplete` with reason `content_filter`, Messages `stop_reason: refusal`) work
as for chat.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web


def _text_of(content: Any, kinds: tuple[str, ...]) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") in kinds)
    return ""


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def _sse(events: list[tuple[str, dict[str, Any]]]) -> list[bytes]:
    return [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]


class DemoApis:
    """Handlers bound to one demo upstream: its `model`, `port(request)` for the reply tag, and
    `gate(request)`, which counts the request, applies the delay and returns a failure status or 0."""

    def __init__(self, model: str, port: Callable[[web.Request], str],
                 gate: Callable[[web.Request], Awaitable[int]]) -> None:
        self.model = model
        self._port = port
        self._gate = gate
        self._stored: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def _reply(self, request: web.Request, prompt: str, extras: list[str]) -> str:
        tail = f" [{'; '.join(extras)}]" if extras else ""
        return f"[{self.model}@{self._port(request)}] You asked: {prompt[:200]}{tail}"

    # -- OpenAI Responses ---------------------------------------------------------------------------------

    async def responses(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("input"), (str, list)):
            return _openai_error(400, "'input' is required")
        if code := await self._gate(request):
            return _openai_error(code, f"demo upstream failing on purpose with {code}")
        prev = body.get("previous_response_id")
        if prev is not None and prev not in self._stored:
            return _openai_error(404, f"Previous response with id '{prev}' not found.")
        items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
        users = [i for i in items if isinstance(i, dict) and i.get("role") == "user"]
        prompt = _text_of(users[-1].get("content"), ("input_text",)) if users else ""
        extras = []
        if (body.get("reasoning") or {}).get("effort"):
            extras.append(f"effort={body['reasoning']['effort']}")
        if body.get("chat_template_kwargs"):
            extras.append(f"template={json.dumps(body['chat_template_kwargs'], sort_keys=True)}")
        if body.get("instructions"):
            extras.append(f"system={body['instructions']!r}")
        text = self._reply(request, prompt, extras)
        in_tok = _tokens(json.dumps(body["input"])) + _tokens(body.get("instructions") or "")
        resp = {"id": f"resp_{uuid.uuid4().hex}", "object": "response", "created_at": int(time.time()),
                "status": "completed", "model": self.model, "error": None, "incomplete_details": None,
                "instructions": body.get("instructions"), "previous_response_id": body.get("previous_response_id"),
                "output": [{"id": f"msg_{uuid.uuid4().hex}", "type": "message", "status": "completed",
                            "role": "assistant",
                            "content": [{"type": "output_text", "text": text, "annotations": []}]}],
                "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
                "usage": {"input_tokens": in_tok, "output_tokens": _tokens(text),
                          "total_tokens": in_tok + _tokens(text),
                          "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}}}
        headers = {"x-demo-model": self.model, "x-demo-port": self._port(request)}
        if request.headers.get("x-demo-refuse"):
            resp.update(status="incomplete", incomplete_details={"reason": "content_filter"})
        if body.get("store", True):
            self._stored[resp["id"]] = resp
            while len(self._stored) > 1000:
                self._stored.popitem(last=False)
        if not body.get("stream"):
            return web.json_response(resp, headers=headers)
        item = resp["output"][0]
        base = {"item_id": item["id"], "output_index": 0, "content_index": 0}
        shell = dict(resp, status="in_progress", output=[], usage=None)
        events: list[tuple[str, dict[str, Any]]] = [
            ("response.created", {"response": shell}), ("response.in_progress", {"response": shell}),
            ("response.output_item.added", {"output_index": 0, "item": dict(item, status="in_progress", content=[])}),
            ("response.content_part.added", {**base, "part": {"type": "output_text", "text": "", "annotations": []}}),
        ]
        words = text.split(" ")
        events += [("response.output_text.delta", {**base, "delta": " ".join(words[i:i + 3]) + (
            " " if i + 3 < len(words) else ""), "logprobs": []}) for i in range(0, len(words), 3)]
        cut = len(events)
        events += [("response.output_text.done", {**base, "text": text, "logprobs": []}),
                   ("response.content_part.done", {**base, "part": item["content"][0]}),
                   ("response.output_item.done", {"output_index": 0, "item": item}),
                   ("response.completed" if resp["status"] == "completed" else "response.incomplete",
                    {"response": resp})]
        for n, (name, data) in enumerate(events):
            data["type"], data["sequence_number"] = name, n
        return await self._stream(request, headers, _sse(events), cut)

    async def stored_response(self, request: web.Request) -> web.Response:
        resp = self._stored.get(request.match_info["id"])
        if resp is None:
            return _openai_error(404, f"Response with id '{request.match_info['id']}' not found.")
        return web.json_response(resp, headers={"x-demo-model": self.model, "x-demo-port": self._port(request)})

    # -- Anthropic Messages -------------------------------------------------------------------------------

    async def messages(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) \
                or not isinstance(body.get("max_tokens"), int):
            return _anthropic_error(400, "messages and max_tokens are required")
        if code := await self._gate(request):
            return _anthropic_error(code, f"demo upstream failing on purpose with {code}")
        users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        prompt = _text_of(users[-1].get("content"), ("text",)) if users else ""
        extras = []
        thinking = body.get("thinking") or {}
        if thinking.get("type") == "enabled":
            extras.append(f"thinking={thinking.get('budget_tokens')}")
        system = body.get("system")
        if system:
            extras.append(f"system={_text_of(system, ('text',))!r}")
        text = self._reply(request, prompt, extras)
        in_tok = _tokens(json.dumps(body["messages"])) + _tokens(_text_of(system, ("text",)))
        stop = "refusal" if request.headers.get("x-demo-refuse") else "end_turn"
        msg = {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": self.model,
               "content": [{"type": "text", "text": text}], "stop_reason": stop, "stop_sequence": None,
               "usage": {"input_tokens": in_tok, "output_tokens": _tokens(text)}}
        headers = {"x-demo-model": self.model, "x-demo-port": self._port(request),
                   "x-demo-saw-api-key": "yes" if request.headers.get("x-api-key") else "no",
                   "x-demo-anthropic-version": request.headers.get("anthropic-version", "")}
        if not body.get("stream"):
            return web.json_response(msg, headers=headers)
        start = dict(msg, content=[], stop_reason=None, usage={"input_tokens": in_tok, "output_tokens": 1})
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"message": start}),
            ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
            ("ping", {}),
        ]
        words = text.split(" ")
        events += [("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": " ".join(
            words[i:i + 3]) + (" " if i + 3 < len(words) else "")}}) for i in range(0, len(words), 3)]
        cut = len(events)
        events += [("content_block_stop", {"index": 0}),
                   ("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                      "usage": {"output_tokens": _tokens(text)}}),
                   ("message_stop", {})]
        for name, data in events:
            data["type"] = name
        return await self._stream(request, headers, _sse(events), cut)

    async def _stream(self, request: web.Request, headers: dict[str, str], chunks: list[bytes],
                      cut: int) -> web.StreamResponse:
        resp = web.StreamResponse(headers={**headers, "content-type": "text/event-stream", "cache-control": "no-cache"})
        await resp.prepare(request)
        for chunk in chunks[:cut] if request.headers.get("x-demo-truncate") else chunks:
            await resp.write(chunk)
        await resp.write_eof()
        return resp


def _openai_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                        "code": "demo_failure" if status >= 500 else "invalid_value"}}, status=status)


def _anthropic_error(status: int, message: str) -> web.Response:
    kind = "api_error" if status >= 500 else "invalid_request_error"
    return web.json_response({"type": "error", "error": {"type": kind, "message": message}}, status=status)
