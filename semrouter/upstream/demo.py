"""An OpenAI-compatible stand-in for a vLLM server: the only stand-in in the stack.

It answers `/v1/chat/completions` (JSON, or SSE `chat.completion.chunk` events ending in `data: [DONE]`
when `stream` is true), `/v1/responses` and `/v1/messages` (OpenAI Responses and Anthropic Messages, JSON
and their event streams; upstream/demo_apis.py), `/v1/embeddings` (a fixed vector), `/v1/models` and
`/health`. Every answer names its model, carries `usage`, and can
be delayed (`--delay-ms`, or per request with the `x-demo-delay-ms` header). `x-demo-status: 500` makes it
fail on purpose; `x-demo-truncate: 1` cuts a stream before `[DONE]` (for tests of what gets cached);
`x-demo-reset: 1` resets the connection: before any byte of a JSON answer, after the first event of a stream;
`x-demo-refuse: 1` ends the answer as a provider's content filter does (chat `finish_reason: content_filter`,
Responses `incomplete` with reason `content_filter`, Messages `stop_reason: refusal`).
`POST /_demo/fault {"status": 500}` makes every chat answer fail until `{"status": 0}` (fault drills).
`x-demo-echo: headers` returns, in the `x-demo-seen` answer header (JSON), every header it received under the
router's and Envoy's namespaces (x-vsr-*, x-semrouter-*, x-selected-model, x-envoy-*; trust-boundary tests).
The reply text is derived from the prompt so tests can tell answers apart.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aiohttp import web

from semrouter.upstream.demo_apis import DemoApis

_CHUNK_WORDS = 3
_ECHOED = ("x-vsr-", "x-semrouter-", "x-selected-model", "x-envoy-")


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):
                return " ".join(p["text"] for p in c if isinstance(p, dict) and isinstance(p.get("text"), str))
            return str(c or "")
    return ""


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}},
        status=status, headers=headers,
    )


class DemoUpstream:
    def __init__(self, model: str, delay_ms: float = 0.0, port: int = 0) -> None:
        self.model = model
        self.delay_ms = delay_ms
        self.port = port
        self.requests_seen = 0
        self.fault_status = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        apis = DemoApis(self.model, lambda r: str(r.url.port or self.port), self._gate)
        app.router.add_post("/v1/responses", apis.responses)
        app.router.add_get("/v1/responses/{id}", apis.stored_response)
        app.router.add_post("/v1/messages", apis.messages)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        app.router.add_post("/_demo/fault", self.fault)
        return app

    async def _gate(self, request: web.Request) -> int:
        """Count the request; a failure status to answer with (x-demo-status, a fault drill) or 0 after the delay."""
        self.requests_seen += 1
        code = int(request.headers.get("x-demo-status") or self.fault_status)
        if code:
            return code
        delay = float(request.headers.get("x-demo-delay-ms", self.delay_ms))
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        return 0

    async def embeddings(self, request: web.Request) -> web.Response:
        """A fixed 4-number vector per input (for routing tests of paths the router does not decide)."""
        if await self._gate(request):
            return _error(500, "demo upstream failing on purpose", "demo_failure")
        body = await request.json()
        inputs = body.get("input") if isinstance(body, dict) else None
        items = inputs if isinstance(inputs, list) else [inputs]
        if isinstance(body, dict) and body.get("model") != self.model:
            return _error(404, f"The model '{body.get('model')}' does not exist", "model_not_found")
        return web.json_response({"object": "list", "model": self.model,
                                  "usage": {"prompt_tokens": 1, "total_tokens": 1},
                                  "data": [{"object": "embedding", "index": i, "embedding": [0.5, 0.5, 0.5, 0.5]}
                                           for i in range(len(items))]},
                                 headers={"x-demo-model": self.model, "x-demo-port": str(self.port)})

    async def health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "model": self.model})

    async def fault(self, request: web.Request) -> web.Response:
        self.fault_status = int((await request.json()).get("status") or 0)
        return web.json_response({"fault_status": self.fault_status, "requests_seen": self.requests_seen})

    async def models(self, _: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "demo"}]}
        )

    def _answer(self, body: dict[str, Any], port_tag: str) -> str:
        prompt = _prompt_text(body.get("messages") or [])
        extras = []
        if body.get("chat_template_kwargs"):
            extras.append(f"template={json.dumps(body['chat_template_kwargs'], sort_keys=True)}")
        if body.get("reasoning_effort"):
            extras.append(f"effort={body['reasoning_effort']}")
        sys_msgs = [m.get("content") for m in body.get("messages") or [] if m.get("role") == "system"]
        if sys_msgs:
            extras.append(f"system={sys_msgs[0]!r}")
        tail = f" [{'; '.join(extras)}]" if extras else ""
        return f"[{self.model}@{port_tag}] You asked: {prompt[:200]}{tail}"

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.requests_seen += 1
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "body is not JSON", "invalid_json")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "'messages' is required", "invalid_value")
        if request.headers.get("x-demo-status") or self.fault_status:
            code = int(request.headers.get("x-demo-status") or self.fault_status)
            return _error(code, f"demo upstream failing on purpose with {code}", "demo_failure",
                          {"x-demo-model": self.model, "x-demo-port": str(self.port)})
        delay = float(request.headers.get("x-demo-delay-ms", self.delay_ms))
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        if request.headers.get("x-demo-reset") and not body.get("stream"):
            _reset(request)
            return web.Response(status=500)  # never sent: the connection is gone
        text = self._answer(body, str(request.url.port or self.port))
        prompt_tokens = sum(_tokens(json.dumps(m.get("content", ""))) for m in body["messages"])
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": _tokens(text),
                 "total_tokens": prompt_tokens + _tokens(text)}
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        finish = "content_filter" if request.headers.get("x-demo-refuse") else "stop"
        headers = {"x-demo-model": self.model, "x-demo-port": str(self.port)}
        if request.headers.get("x-demo-echo") == "headers":
            headers["x-demo-seen"] = json.dumps({k.lower(): v for k, v in request.headers.items()
                                                 if k.lower().startswith(_ECHOED)}, sort_keys=True)
        if not body.get("stream"):
            return web.json_response({
                "id": cid, "object": "chat.completion", "created": created, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "logprobs": None, "finish_reason": finish}],
                "usage": usage,
            }, headers=headers)
        return await self._stream(request, cid, created, text, usage, body, headers, finish)

    async def _stream(self, request: web.Request, cid: str, created: int, text: str, usage: dict[str, int],
                      body: dict[str, Any], headers: dict[str, str], finish: str = "stop") -> web.StreamResponse:
        resp = web.StreamResponse(headers={**headers, "content-type": "text/event-stream", "cache-control": "no-cache"})
        await resp.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None, with_usage: dict[str, int] | None = None,
                  choices: bool = True) -> bytes:
            obj: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created,
                                   "model": self.model,
                                   "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                "finish_reason": finish}] if choices else []}
            if with_usage is not None:
                obj["usage"] = with_usage
            return f"data: {json.dumps(obj)}\n\n".encode()

        await resp.write(chunk({"role": "assistant", "content": ""}, None))
        if request.headers.get("x-demo-reset"):
            _reset(request)
            return resp
        words = text.split(" ")
        for i in range(0, len(words), _CHUNK_WORDS):
            piece = " ".join(words[i:i + _CHUNK_WORDS]) + (" " if i + _CHUNK_WORDS < len(words) else "")
            await resp.write(chunk({"content": piece}, None))
            await asyncio.sleep(0)
        if request.headers.get("x-demo-truncate"):
            return resp  # the connection ends without finish_reason or [DONE]
        await resp.write(chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(chunk({}, None, usage, choices=False))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _reset(request: web.Request) -> None:
    """Abort the connection (TCP RST where the platform sends one), as a crashing upstream would."""
    transport = request.transport
    if transport is not None:
        transport.abort()


async def serve(model: str, port: int, host: str = "127.0.0.1", delay_ms: float = 0.0) -> None:
    """Run one demo upstream until cancelled."""
    runner = web.AppRunner(DemoUpstream(model, delay_ms, port).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
