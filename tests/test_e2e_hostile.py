"""A fresh attacker's pass through a real Envoy on all three APIs: each fault found is a kind, fixed and
tested here (odd encodings, model names, methods and paths)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from conftest import Client, Reply, user

pytestmark = pytest.mark.e2e

BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": user("hello"),
    "/v1/responses": {"model": "auto", "input": "hello"},
    "/v1/messages": {"model": "auto", "max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]},
}


@pytest.fixture(scope="module")
def client(keyword_stack) -> Client:  # type: ignore[no-untyped-def]
    return keyword_stack[1]


def _error(path: str, r: Reply, status: int) -> tuple[str, str | None]:
    """(message, code) of an error reply in `path`'s API shape (Anthropic's has no code: None)."""
    assert r.status == status, (path, r.status, r.body[:300])
    body = r.json()
    if path == "/v1/messages":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
        return body["error"]["message"], None
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]["message"], body["error"]["code"]


@pytest.mark.parametrize("path", list(BODIES))
def test_a_compressed_body_is_415_naming_the_encoding(client: Client, path: str) -> None:
    """gzip bytes used to read as "not valid JSON: not UTF-8"; the router does not decompress (a small body can
    expand past every limit), so it says what is wrong."""
    raw = json.dumps(BODIES[path]).encode()
    for coding in ("gzip", "br", "deflate, gzip"):
        r = client.request("POST", path, gzip.compress(raw), {"content-type": "application/json",
                                                              "content-encoding": coding})
        message, code = _error(path, r, 415)
        assert coding.split(",")[0] in message and code in (None, "unsupported_content_encoding"), message
        assert "x-demo-model" not in r.headers
    r = client.request("POST", path, raw, {"content-type": "application/json", "content-encoding": "identity"})
    assert r.status == 200 and r.headers["x-demo-model"]


@pytest.mark.parametrize("path", list(BODIES))
def test_model_names_are_checked_alike_on_every_api(client: Client, path: str) -> None:
    """A 5,000-character model was a 400 on chat but a 404 echoing all of it on Responses and Messages."""
    def send(model: object) -> Reply:
        return client.request("POST", path, json.dumps({**BODIES[path], "model": model}).encode(),
                              {"content-type": "application/json"})

    for bad in ("x" * 5000, "", "   ", 7, None, ["auto"]):
        message, code = _error(path, send(bad), 400)
        assert "'model'" in message and code in (None, "invalid_value"), message
    for unknown in ("ａｕｔｏ", "auto\u200b", "auto\u0000", "qwen3-32b\r\nx-evil: 1", "😀"):  # look-alikes: never routed
        r = send(unknown)
        message, code = _error(path, r, 404)
        assert code in (None, "model_not_found") and "x-demo-model" not in r.headers and "x-evil" not in r.headers
    for same in ("AUTO", " auto ", "llama-3.1-8b\n"):  # case and surrounding whitespace do not matter
        r = send(same)
        assert r.status == 200 and r.headers["x-demo-model"] == "llama-3.1-8b", (same, r.status)


def test_an_upstreams_own_endpoints_are_not_public(client: Client) -> None:
    """Paths outside /v1/ went to the default model's upstream untouched: vLLM's /metrics, /tokenize, /version,
    /health (and in its dev mode /sleep, /reset_prefix_cache) were reachable through the public listener. Now any
    path the router does not decide is a 404 unless routing.path_models names it (tests/test_stream_apis.py)."""
    for method, path in (("GET", "/health"), ("GET", "/metrics"), ("POST", "/tokenize"), ("POST", "/sleep"),
                         ("GET", "/version"), ("GET", "/"), ("GET", "/v1"), ("GET", "/v1/models/%2e%2e"),
                         ("HEAD", "/health"), ("OPTIONS", "/")):
        r = client.request(method, path, b"{}" if method == "POST" else None, {"content-type": "application/json"})
        assert r.status == 404 and "x-demo-model" not in r.headers, (method, path, r.status, r.body[:200])
        if method != "HEAD":
            assert r.json()["error"]["code"] == "unknown_url", (path, r.body)
    r = client.request("GET", "/health", None, {"anthropic-version": "2023-06-01"})
    assert r.status == 404 and r.json()["type"] == "error"


@pytest.mark.parametrize("path", list(BODIES))
def test_an_empty_chunked_body_is_missing_body(client: Client, path: str) -> None:
    """A chunked request with no data was 400 invalid_json ("Expecting value"); with content-length: 0 it was
    missing_body. Both are missing_body now (and a body of whitespace too)."""
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", client.port, timeout=30)
    try:
        c.request("POST", path, body=iter([]), headers={"content-type": "application/json"}, encode_chunked=True)
        r = c.getresponse()
        reply = Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        c.close()
    for got in (reply, client.request("POST", path, b"", {"content-type": "application/json"}),
                client.request("POST", path, b" \n", {"content-type": "application/json"})):
        message, code = _error(path, got, 400)
        assert "empty" in message and code in (None, "missing_body"), message


def test_head_on_the_model_list_is_its_get_without_a_body(client: Client) -> None:
    for path in ("/v1/models", "/v1/models/auto"):
        get, head = client.request("GET", path), client.request("HEAD", path)
        assert get.status == head.status == 200 and head.body == b"", (path, head.status)
        assert head.headers["content-type"] == "application/json"
    assert client.request("HEAD", "/v1/models/nope").status == 404


def test_an_unknown_response_id_says_so(client: Client) -> None:
    """GET /v1/responses/{id} for an id the router never routed said "no model serves this path"."""
    for method in ("GET", "DELETE"):
        r = client.request(method, "/v1/responses/resp_never_seen")
        message, code = _error("/v1/responses", r, 404)
        assert code == "response_not_found" and "resp_never_seen" in message, message


def test_requests_across_reloads_all_answer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Clients on all three APIs while the config is swapped again and again (SIGHUP after each edit): every
    request is answered by an upstream, none fails, and the swaps took effect (a new keyword rule routes)."""
    import signal
    import threading
    import time

    import yaml

    from conftest import start_stack

    stack, client = start_stack(tmp_path, {"signals.enabled": False, "cache.enabled": False})
    path = tmp_path / "semrouter.yaml"
    cfg = yaml.safe_load(path.read_text())
    failures: list[tuple[str, int, bytes]] = []
    models: set[str] = set()
    stop = threading.Event()

    def drive(api_path: str) -> None:
        body = json.dumps({**BODIES[api_path], **({"input": "parrots on deck"} if "input" in BODIES[api_path] else
                                                   {"messages": [{"role": "user", "content": "parrots on deck"}]})})
        while not stop.is_set():
            r = client.request("POST", api_path, body.encode(), {"content-type": "application/json"})
            if r.status != 200 or "x-demo-model" not in r.headers:
                failures.append((api_path, r.status, r.body[:200]))
            else:
                models.add(r.headers["x-demo-model"])

    threads = [threading.Thread(target=drive, args=(p,)) for p in BODIES]
    try:
        for t in threads:
            t.start()
        for i in range(6):  # each edit is new bytes, so each SIGHUP builds and swaps a new runtime
            rules = [r for r in cfg["keyword_rules"] if r["name"] != "parrots"]
            if i % 2 == 0:
                rules.append({"name": "parrots", "category": "math", "keywords": ["parrots"]})
            path.write_text(yaml.safe_dump({**cfg, "keyword_rules": rules}))
            stack.procs["router"].send_signal(signal.SIGHUP)
            time.sleep(0.7)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        stack.stop()
    assert not failures, failures[:5]
    assert models == {"llama-3.1-8b", "qwen3-32b"}  # the rule came and went with the swaps


@pytest.mark.parametrize("path", list(BODIES))
def test_a_body_followed_by_trailers_is_decided(client: Client, path: str) -> None:
    """An HTTP/2 request whose body is followed by trailers reached the default model undecided (no keyword rule,
    no safety or PII policy, its `model` not read): Envoy's buffered body message then says end_of_stream false,
    and the router waited for more that never came. Now the one buffered message is the body, however it ends;
    trailers without a body come to the router too (it answered nothing: Envoy sent no body message)."""
    import h2c

    math = {**BODIES[path]}
    if path == "/v1/responses":
        math["input"] = "the integral of x squared"
    else:
        math["messages"] = [{"role": "user", "content": "the integral of x squared"}]
    ct = {"content-type": "application/json"}
    for trailers in (None, {"x-checksum": "1"}):
        status, body = h2c.request(client.port, "POST", path, ct, json.dumps(math).encode(), trailers)
        assert status == 200 and json.loads(body)["model"] == "qwen3-32b", (trailers, status, body[:300])
        status, body = h2c.request(client.port, "POST", path, ct, b"{", trailers)  # the router's 400, not upstream's
        assert status == 400 and b"Request body is not valid JSON" in body, (trailers, status, body[:300])
    # headers, then trailers, no body: Envoy sends the router no body message (trailers come to it instead)
    status, body = h2c.request(client.port, "POST", path, ct, b"", {"x-checksum": "1"})
    assert status == 400 and b"Request body is empty" in body, (status, body[:300])
