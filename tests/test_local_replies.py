"""Every reply Envoy writes itself is JSON in the client's API's error shape (OpenAI's, or Anthropic's on
/v1/messages and for requests carrying anthropic-version), in every shipped Envoy config; the router's own
replies pass through unchanged. Static checks over the configs, then each status Envoy generates, on each API
path, through a real Envoy (fail-closed, so the router's absence is Envoy's 503/504)."""

from __future__ import annotations

import json
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import SHIPPED_PORTS, Client, Reply, user
from semrouter.devstack import Stack, free_port
from test_trust_boundary import SHIPPED, _hcm

OPENAI_PATHS = ("/v1/chat/completions", "/v1/responses")
ANTHROPIC = "/v1/messages"
BODIES = {"/v1/chat/completions": user("hello"), "/v1/responses": {"model": "auto", "input": "hello"},
          "/v1/messages": {"model": "auto", "max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]}}
# Anthropic's error types by status (its API reference; 504 timeout_error)
# A body just over Envoy's per-request buffer (per_connection_buffer_limit_bytes, 4 MiB + 64 KiB in the shipped
# configs): Envoy answers 413 once the buffer is full and stops reading; the little left of the body fits the socket
# buffers, so a client that sends it all before reading (http.client) still reads the 413 instead of a reset.
OVER_ENVOY_BUFFER = 4_259_840 + 200_000
ANTHROPIC_TYPES = {400: "invalid_request_error", 404: "not_found_error", 413: "request_too_large",
                   431: "invalid_request_error", 502: "api_error", 503: "overloaded_error", 504: "timeout_error"}


# ---------------------------------------------------------------- static: every shipped Envoy config


def _mappers(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    return _hcm(cfg)["local_reply_config"]["mappers"]


def _expr(mapper: dict[str, Any]) -> str:
    ext = mapper["filter"]["extension_filter"]
    assert ext["name"] == "envoy.access_loggers.extension_filters.cel"
    return ext["typed_config"]["expression"]


def test_every_shipped_config_has_the_same_local_replies() -> None:
    (first_name, first), *rest = SHIPPED
    for name, cfg in rest:
        assert _mappers(cfg) == _mappers(first), f"{name} differs from {first_name}"
        assert "body_format" not in _hcm(cfg)["local_reply_config"], name  # would rewrite the router's replies too


@pytest.mark.parametrize("name, cfg", SHIPPED, ids=[n for n, _ in SHIPPED])
def test_local_reply_bodies_have_each_apis_shape(name: str, cfg: dict[str, Any]) -> None:
    mappers = _mappers(cfg)
    # first: the router's replies (ImmediateResponse details "semrouter") are kept as the router wrote them
    assert _expr(mappers[0]) == "response.code_details == 'semrouter'" and "body_format_override" not in mappers[0]
    anthropic, openai = 0, 0
    for m in mappers[1:]:
        fmt = m["body_format_override"]
        assert fmt["content_type"] == "application/json", name
        body = json.loads(fmt["text_format_source"]["inline_string"])
        if "anthropic-version" in _expr(m):
            assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, (name, body)
            anthropic += 1
        else:
            assert set(body["error"]) == {"message", "type", "param", "code"}, (name, body)
            # a request Envoy cannot read has no path: both shapes at once, where both APIs name the type alike
            assert set(body) == {"error"} or (body["type"] == "error" and body["error"]["type"] ==
                                              "invalid_request_error"), (name, body)
            openai += 1
    assert anthropic == openai >= 9, name
    # the last OpenAI mapper takes every 5xx and the one before the 5xx class every 4xx: nothing is left plain text
    exprs = [_expr(m) for m in mappers]
    assert "response.code >= 400 && response.code < 500" in exprs and exprs[-1] == "response.code >= 500", name


# ---------------------------------------------------------------- through a real Envoy


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Client]]:
    """The shipped envoy.yaml, fail-closed (failure_mode_allow: false), keyword routing only."""
    ports = {p: free_port() for p in SHIPPED_PORTS}
    tmp = tmp_path_factory.mktemp("localreplies")
    stack = Stack(ports=ports, overrides={"signals.enabled": False, "cache.enabled": False,
                                          "server.max_body_bytes": 65536},
                  workdir=tmp, log_dir=tmp / "logs", failure_mode="closed").start()
    try:
        yield stack, Client(ports[8801])
    finally:
        stack.stop()


def _post(client: Client, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
    data = body if body is not None else json.dumps(BODIES.get(path, {})).encode()
    return client.request("POST", path, data, {"content-type": "application/json", **(headers or {})})


def _assert_openai(r: Reply, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status == status, (r.status, r.body[:200])
    assert r.headers["content-type"] == "application/json", r.headers
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"} and err["message"], err
    if code is not None:
        assert err["code"] == code, err
    return err


def _assert_anthropic(r: Reply, status: int) -> dict[str, Any]:
    assert r.status == status, (r.status, r.body[:200])
    assert r.headers["content-type"] == "application/json", r.headers
    body = r.json()
    assert body["type"] == "error" and body["error"]["message"], body
    assert body["error"]["type"] == ANTHROPIC_TYPES.get(status, "invalid_request_error"), body
    return body["error"]


def _assert_shape(path: str, r: Reply, status: int, code: str | None = None) -> None:
    if path == ANTHROPIC:
        _assert_anthropic(r, status)
    else:
        _assert_openai(r, status, code)


def test_the_routers_own_replies_are_kept(closed: tuple[Stack, Client]) -> None:
    _, client = closed
    err = _assert_openai(_post(client, "/v1/chat/completions", b"{"), 400, "invalid_json")
    assert "JSON" in err["message"]
    err = _assert_openai(_post(client, "/v1/chat/completions", json.dumps(user("x" * 70_000)).encode()), 413,
                         "request_too_large")
    assert "65536" in err["message"]  # the router's message (its limit), not Envoy's
    _assert_openai(client.request("GET", "/v1/no-such-thing"), 404, "unknown_url")
    err = _assert_anthropic(_post(client, ANTHROPIC, b"[]"), 400)
    assert "object" in err["message"].lower()


@pytest.mark.parametrize("path", [*OPENAI_PATHS, ANTHROPIC])
def test_body_over_envoys_buffer_is_413_in_the_apis_shape(closed: tuple[Stack, Client], path: str) -> None:
    _, client = closed
    _assert_shape(path, _post(client, path, b"{" + b" " * OVER_ENVOY_BUFFER + b"}"), 413, "request_too_large")


@pytest.mark.parametrize("path", OPENAI_PATHS)
def test_anthropic_version_does_not_change_the_chat_and_responses_shape(closed: tuple[Stack, Client],
                                                                       path: str) -> None:
    """The router answers chat completions and Responses in OpenAI's shape whatever headers come with them (the
    path decides; anthropic-version only matters on other paths, e.g. /v1/models): Envoy's replies follow."""
    _, client = closed
    claude = {"anthropic-version": "2023-06-01"}
    _assert_openai(_post(client, path, b"{" + b" " * OVER_ENVOY_BUFFER + b"}", claude), 413, "request_too_large")  # Envoy
    _assert_openai(_post(client, path, b"{", claude), 400, "invalid_json")  # the router


@pytest.mark.parametrize("path", [*OPENAI_PATHS, ANTHROPIC, "/v1/models"])
def test_headers_too_large_is_431_in_the_apis_shape(closed: tuple[Stack, Client], path: str) -> None:
    _, client = closed
    big = {"x-padding": "p" * 70_000}
    r = client.request("GET", path, None, big) if path == "/v1/models" else _post(client, path, None, big)
    _assert_shape(path, r, 431, "headers_too_large")
    # a model list asked for by Anthropic's SDK: Anthropic's shape
    if path == "/v1/models":
        _assert_anthropic(client.request("GET", path, None, {**big, "anthropic-version": "2023-06-01"}), 431)


def _raw(port: int, data: bytes) -> Reply:
    """Send bytes as they are (malformed HTTP the stdlib client will not write) and read one answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(data)
        return _read_reply(s)


def _read_reply(s: socket.socket, buf: bytes = b"") -> Reply:
    """Read one HTTP/1.1 answer (head, then content-length bytes of body) from `s`; `buf`: bytes already read."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    while len(body) < int(hdrs.get("content-length", 0)):
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return Reply(int(lines[0].split()[1]), hdrs, body)


@pytest.mark.parametrize("path", [*OPENAI_PATHS, ANTHROPIC])
def test_unreadable_http_is_400_in_the_apis_shape(closed: tuple[Stack, Client], path: str) -> None:
    _, client = closed
    # a header value with a bare control character: Envoy's HTTP/1 codec refuses the request
    r = _raw(client.port, f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                          "x-odd: a\x01b\r\ncontent-length: 2\r\n\r\n{}".encode())
    _assert_shape(path, r, 400, "bad_request")


def test_slow_request_headers_get_408_in_both_shapes(closed: tuple[Stack, Client]) -> None:
    """A client sending its headers a byte at a time held a connection for the 300 s stream idle timeout; now
    Envoy answers 408 once `request_headers_timeout` (10 s in every shipped config) runs out. No path is known
    yet, so the body is in both shapes (OpenAI's fields plus Anthropic's "type": "error")."""
    import time

    for name, cfg in SHIPPED:
        assert _hcm(cfg)["request_headers_timeout"] == "10s", name
    _, client = closed
    out: dict[str, tuple[float, Reply]] = {}

    def slow(path: str) -> None:
        t0 = time.monotonic()
        out[path] = (0.0, _raw(client.port, f"POST {path} HTTP/1.1\r\nhost: x\r\n".encode()))  # never finished
        out[path] = (time.monotonic() - t0, out[path][1])

    threads = [threading.Thread(target=slow, args=(p,)) for p in (OPENAI_PATHS[0], ANTHROPIC)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for path in (OPENAI_PATHS[0], ANTHROPIC):
        took, r = out[path]
        assert 9 <= took < 14, (path, took)
        _assert_shape(path, r, 408, "request_timeout")


@pytest.mark.parametrize("path", [*OPENAI_PATHS, ANTHROPIC])
def test_no_healthy_upstream_is_503_in_the_apis_shape(closed: tuple[Stack, Client], path: str) -> None:
    stack, client = closed
    up = stack.procs.get(f"upstream-{stack.port(8001)}")
    if up is not None and up.poll() is None:  # the default model's only endpoint goes away (and stays away)
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=10)
    r = _post(client, path, headers={"x-demo-echo": "headers"})
    _assert_shape(path, r, 503, "service_unavailable")
    assert "x-demo-model" not in r.headers


def _concurrently(client: Client, paths: list[str]) -> dict[str, Reply]:
    out: dict[str, Reply] = {}

    def one(p: str) -> None:
        out[p] = _post(client, p) if p.startswith("/v1/") and p != "/v1/models" else client.request("GET", p)

    threads = [threading.Thread(target=one, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return out


def test_router_slow_or_down_is_504_or_503_in_the_apis_shape(closed: tuple[Stack, Client]) -> None:
    """Fail-closed: the router's absence is Envoy's reply (status_on_error, message_timeout), in each API's shape."""
    stack, client = closed
    paths = [*OPENAI_PATHS, ANTHROPIC]
    router = stack.procs["router"]
    router.send_signal(signal.SIGSTOP)  # no answer within message_timeout (5 s): 504
    try:
        replies = _concurrently(client, paths)
    finally:
        router.send_signal(signal.SIGCONT)
    for p in paths:
        _assert_shape(p, replies[p], 504, "timeout")
    router.send_signal(signal.SIGTERM)
    router.wait(timeout=15)
    for p in paths:
        _assert_shape(p, _post(client, p), 503, "service_unavailable")
    _assert_openai(client.request("GET", "/v1/models"), 503, "service_unavailable")
    _assert_anthropic(client.request("GET", "/v1/models", None, {"anthropic-version": "2023-06-01"}), 503)


def test_an_endpoint_off_the_allow_list_is_502_in_the_apis_shape(tmp_path: Path) -> None:
    """ORIGINAL_DST: an endpoint the router names but Envoy's allow-list does not have (a router config edited
    without envoy-original-dst.yaml) is Envoy's direct 502, in each API's error shape; nothing is forwarded."""
    import yaml

    from semrouter.devstack import ROOT

    cfg = yaml.safe_load((ROOT / "config" / "semrouter.yaml").read_text())
    cfg["models"][1]["endpoints"] = [{"address": "127.0.0.1", "port": 8003}]  # qwen3-32b: not in (8001|8002)
    cfg["routing"]["endpoint_selection"] = "original_dst"
    cfg["signals"], cfg["cache"] = {"enabled": False}, {"enabled": False}
    src = tmp_path / "router.yaml"
    src.write_text(yaml.safe_dump(cfg))
    ports = {p: free_port() for p in (*SHIPPED_PORTS, 8003)}
    stack = Stack(router_config=src, envoy_config=ROOT / "envoy" / "envoy-original-dst.yaml", ports=ports,
                  workdir=tmp_path / "stack", log_dir=tmp_path / "logs").start()
    client = Client(ports[8801])
    try:
        for path in (*OPENAI_PATHS, ANTHROPIC):
            r = client.request("POST", path, json.dumps({**BODIES[path], "model": "qwen3-32b"}).encode(),
                               {"content-type": "application/json"})
            _assert_shape(path, r, 502, "bad_gateway")
            assert "x-demo-model" not in r.headers
            ok = _post(client, path)  # the default model's endpoint is on the list
            assert ok.status == 200 and ok.headers["x-demo-model"] == "llama-3.1-8b"
    finally:
        stack.stop()


def test_a_body_sent_a_byte_at_a_time_gets_408(tmp_path: Path) -> None:
    """A client that sends its headers and then dribbles the body (one byte every second, each byte restarting the
    300 s stream idle timeout) held a connection for ever: `request_timeout` was 0 (off). Every shipped config now
    bounds the whole request (120 s); here a copy of envoy.yaml with 3 s shows Envoy's answer: 408 in the API's
    shape, and a request that arrives in time is still routed."""
    import time

    import yaml

    for name, cfg in SHIPPED:
        assert _hcm(cfg)["request_timeout"] == "120s", name
    root = Path(__file__).resolve().parent.parent
    cfg = yaml.safe_load((root / "envoy" / "envoy.yaml").read_text())
    _hcm(cfg)["request_timeout"] = "3s"
    short = tmp_path / "envoy.yaml"
    short.write_text(yaml.safe_dump(cfg, sort_keys=False))
    ports = {p: free_port() for p in SHIPPED_PORTS}
    stack = Stack(ports=ports, envoy_config=short, overrides={"signals.enabled": False, "cache.enabled": False},
                  workdir=tmp_path / "stack", log_dir=tmp_path / "logs").start()
    try:
        client = Client(stack.port(8801))
        out: dict[str, tuple[float, Reply]] = {}

        def dribble(path: str) -> None:
            body = json.dumps(user("hello")).encode()
            t0 = time.monotonic()
            with socket.create_connection(("127.0.0.1", client.port), timeout=20) as s:
                s.sendall(f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                          f"content-length: {len(body)}\r\n\r\n".encode())
                s.settimeout(1.0)
                buf = b""
                for byte in body[:-1]:  # never the last byte
                    try:
                        s.sendall(bytes([byte]))
                        buf += s.recv(65536)
                    except (TimeoutError, socket.timeout):
                        continue
                    except OSError:
                        break
                    if buf:
                        break
                s.settimeout(10)
                reply = _read_reply(s, buf)
            out[path] = (time.monotonic() - t0, reply)

        threads = [threading.Thread(target=dribble, args=(p,)) for p in (OPENAI_PATHS[0], ANTHROPIC)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=40)
        for path in (OPENAI_PATHS[0], ANTHROPIC):
            took, r = out[path]
            assert 2.5 <= took < 10, (path, took)
            _assert_shape(path, r, 408, "request_timeout")
        assert _post(client, OPENAI_PATHS[0]).status == 200  # in time: routed as before
        # an answer that takes longer than request_timeout is not cut: the timer stopped when the request went upstream
        slow = _post(client, OPENAI_PATHS[0], headers={"x-demo-delay-ms": "4500"})
        assert slow.status == 200 and json.loads(slow.body)["object"] == "chat.completion"
    finally:
        stack.stop()
