"""End to end through a real Envoy: routing, pass-through, SSE, and every bad-input case."""

from __future__ import annotations

import json
import socket
import time

import pytest

from conftest import Client, eventually, settled, user

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(keyword_stack) -> Client:
    return keyword_stack[1]


def test_explicit_model_reaches_that_upstream(client: Client) -> None:
    r = client.chat(user("hello there", model="qwen3-32b"))
    assert r.status == 200
    assert r.json()["model"] == "qwen3-32b"
    assert r.headers["x-demo-model"] == "qwen3-32b"
    assert r.headers["x-vsr-selected-model"] == "qwen3-32b"
    assert r.headers["x-semrouter-reason"] == "explicit"


def test_auto_keyword_rule_routes_to_rule_model(client: Client) -> None:
    r = client.chat(user("What is the derivative of sin(x)?"))
    assert r.status == 200
    assert r.headers["x-demo-model"] == "qwen3-32b"
    assert r.headers["x-vsr-selected-category"] == "math"
    assert r.headers["x-semrouter-reason"] == "keyword:math-terms"
    # math asks for reasoning on a model with a chat_template_kwargs family, and a system prompt
    content = r.json()["choices"][0]["message"]["content"]
    assert '"enable_thinking": true' in content
    assert "careful mathematician" in content
    assert r.headers["x-vsr-selected-reasoning"] == "on"


def test_mom_alias_is_auto(client: Client) -> None:
    r = client.chat(user("The plaintiff filed a tort claim", model="MoM"))
    assert r.status == 200
    assert r.headers["x-vsr-selected-category"] == "law"
    assert r.headers["x-demo-model"] == "qwen3-32b"


def test_auto_without_confident_signal_gets_default_model(client: Client) -> None:
    r = client.chat(user("hi, how are you today?"))
    assert r.status == 200
    assert r.headers["x-demo-model"] == "llama-3.1-8b"
    assert r.headers["x-semrouter-reason"] == "default"
    assert "x-vsr-selected-category" not in r.headers


def test_client_cannot_pick_cluster_by_header(client: Client) -> None:
    r = client.chat(user("hi, how are you today?"), {"x-semrouter-cluster": "qwen3-32b",
                                                     "x-vsr-destination-endpoint": "127.0.0.1:1"})
    assert r.status == 200
    assert r.headers["x-demo-model"] == "llama-3.1-8b"


def test_other_body_fields_survive_the_rewrite(client: Client) -> None:
    r = client.chat(user("hello", temperature=0.25, max_tokens=7, stream=False, user="u-1"))
    assert r.status == 200
    assert r.json()["object"] == "chat.completion"


def test_sse_stream_passes_through_intact(client: Client) -> None:
    r = client.chat(user("Please prove that the square root of 2 is irrational", stream=True,
                         stream_options={"include_usage": True}))
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-vsr-selected-model"] == "qwen3-32b"
    events = [e for e in r.body.decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "qwen3-32b" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert "square root of 2" in text
    assert any(c["choices"] and c["choices"][0]["finish_reason"] == "stop" for c in chunks)
    assert chunks[-1]["usage"]["total_tokens"] > 0


def test_models_list_answered_by_router(client: Client) -> None:
    r = client.request("GET", "/v1/models")
    assert r.status == 200
    ids = [m["id"] for m in r.json()["data"]]
    assert ids == ["auto", "MoM", "llama-3.1-8b", "qwen3-32b"]
    assert "x-demo-model" not in r.headers  # no upstream was involved


def test_unowned_path_is_404_not_the_default_model(client: Client) -> None:
    r = client.request("GET", "/health")  # the demo upstream answers /health; the router does not send it there
    assert r.status == 404 and "x-demo-model" not in r.headers and r.json()["error"]["code"] == "unknown_url"


def _assert_openai_error(r, status: int, code: str) -> None:
    assert r.status == status, r.body
    err = r.json()["error"]
    assert err["code"] == code
    assert isinstance(err["message"], str) and err["message"]
    assert "type" in err


def test_malformed_json_is_400(client: Client) -> None:
    _assert_openai_error(client.chat(b'{"model": "auto", "messages": ['), 400, "invalid_json")


@pytest.mark.parametrize("payload", [
    {"model": "auto"},
    {"model": "auto", "messages": []},
    {"model": "auto", "messages": "hello"},
    {"model": 7, "messages": [{"role": "user", "content": "x"}]},
    {"model": "auto", "messages": [{"role": "wizard", "content": "x"}]},
    {"model": "auto", "messages": [{"role": "user", "content": 42}]},
    {"model": "auto", "messages": [{"role": "user", "content": "x"}], "stream": "yes"},
    {"model": "auto", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
    [1, 2, 3],
])
def test_wrong_shapes_are_400(client: Client, payload) -> None:
    _assert_openai_error(client.chat(json.dumps(payload).encode()), 400, "invalid_value")


def test_empty_body_is_400(client: Client) -> None:
    r = client.request("POST", "/v1/chat/completions", b"", {"content-type": "application/json"})
    _assert_openai_error(r, 400, "missing_body")


def test_non_json_content_type_is_415(client: Client) -> None:
    r = client.request("POST", "/v1/chat/completions", b"model=auto", {"content-type": "text/plain"})
    _assert_openai_error(r, 415, "unsupported_media_type")


def test_body_over_router_limit_is_413(client: Client) -> None:
    big = user("x" * 70_000)  # the stack runs with server.max_body_bytes = 65536
    _assert_openai_error(client.chat(big), 413, "request_too_large")


def test_body_over_envoy_buffer_is_413(client: Client) -> None:
    # just over Envoy's 4 MiB + 64 KiB buffer: the rest of the body fits the socket buffers, so this client (which
    # sends the whole body before reading) reads Envoy's 413 rather than a reset when Envoy stops reading
    r = client.chat(user("y" * (4_259_840 + 200_000)))
    assert r.status == 413


def test_unknown_model_is_404_not_503(client: Client) -> None:
    _assert_openai_error(client.chat(user("hi", model="gpt-17")), 404, "model_not_found")


def test_router_survives_a_cancelled_stream(client: Client) -> None:
    """Send half a request and hang up; the router must keep serving."""
    body = json.dumps(user("a request that never finishes")).encode()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", client.port)) as s:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                      + f"content-length: {len(body)}\r\n\r\n".encode() + body[: len(body) // 2])
    # and one that is cancelled while the upstream is still answering
    with socket.create_connection(("127.0.0.1", client.port)) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                  + b"x-demo-delay-ms: 500\r\n" + f"content-length: {len(body)}\r\n\r\n".encode() + body)
    r = client.chat(user("still there?"))
    assert r.status == 200
    assert r.headers["x-vsr-selected-model"] == "llama-3.1-8b"


def test_metrics_count_routed_requests(keyword_stack) -> None:
    stack, client = keyword_stack
    import urllib.request

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.port(9190)}/metrics", timeout=5) as r:
            return r.read().decode()

    def value(text: str, prefix: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))

    before = scrape()
    for _ in range(3):
        assert client.chat(user("What is the derivative of x^2?", stream=True,
                                stream_options={"include_usage": True})).status == 200
    client.chat(b"{broken")
    deadline = time.monotonic() + 5  # answers reach the router on the observer stream, just after the client
    while True:
        after = scrape()
        if value(after, 'llm_model_ttft_seconds_count{model="qwen3-32b"}') - \
                value(before, 'llm_model_ttft_seconds_count{model="qwen3-32b"}') >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert value(after, 'llm_model_requests_total{model="qwen3-32b"}') - \
        value(before, 'llm_model_requests_total{model="qwen3-32b"}') == 3
    assert value(after, 'llm_model_routing_modifications_total{source_model="auto",target_model="qwen3-32b"}') >= 3
    assert value(after, 'llm_model_completion_tokens_total{model="qwen3-32b"}') > \
        value(before, 'llm_model_completion_tokens_total{model="qwen3-32b"}')
    assert value(after, 'llm_model_ttft_seconds_count{model="qwen3-32b"}') >= 3
    assert value(after, 'llm_request_errors_total{model="unknown",reason="invalid_json"}') >= 1


def test_admin_api_on_its_own_port(keyword_stack) -> None:
    from semrouter.admin.client import AdminCallError, call

    stack, _ = keyword_stack
    with pytest.raises(AdminCallError) as e:  # not on the ext_proc port Envoy talks to
        call(f"127.0.0.1:{stack.port(50051)}", "cache_stats")
    assert "UNIMPLEMENTED" in str(e.value)
    target = f"127.0.0.1:{stack.port(50052)}"
    c = call(target, "classify", text="What is the derivative of x^2?")
    assert c["category"] == "math" and c["model"] == "qwen3-32b" and c["reason"] == "keyword:math-terms"
    cfg = call(target, "get_config")
    assert "default_model: llama-3.1-8b" in cfg["config"] and cfg["version"]
    assert call(target, "cache_stats")["enabled"] is False
    r = call(target, "reload_config")
    assert r["ok"] is True and r["version"] == cfg["version"]


def _router_streams(stack) -> int:  # type: ignore[no-untyped-def]
    """ext_proc streams Envoy has opened to the router so far (each stream is one upstream request)."""
    import urllib.request

    url = f"http://127.0.0.1:{stack.port(9901)}/stats?filter=^cluster.semrouter.upstream_rq_total$"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return int(text.strip().rsplit(":", 1)[1])


def test_observer_stream_only_for_paths_the_router_owns(keyword_stack) -> None:  # type: ignore[no-untyped-def]
    """Chat answers stream to the router (decision + observer: two streams per request); answers on paths it
    does not own carry no join nonce and skip the observer: one stream each."""
    stack, client = keyword_stack
    def streams() -> int:
        return _router_streams(stack)

    before = settled(streams)
    for _ in range(5):
        r = client.request("POST", "/v1/embeddings", json.dumps({"model": "x", "input": "hi"}).encode(),
                           {"content-type": "application/json"})
        assert r.status < 500
    assert settled(streams) - before == 5
    before = settled(streams)
    for _ in range(5):
        assert client.chat(user("hello there", model="qwen3-32b")).status == 200
    assert settled(streams) - before == 10


def test_router_replies_open_no_observer_stream(keyword_stack) -> None:  # type: ignore[no-untyped-def]
    """Answers the router wrote itself (a 400 for a malformed body, a 404 for an unknown model) carry no join nonce:
    envoy.yaml skips the observer for them, so each costs the decision stream alone (it opened a second, useless
    stream before)."""
    stack, client = keyword_stack

    def streams() -> int:
        return _router_streams(stack)

    before = settled(streams)
    for _ in range(3):
        assert client.chat(b'{"model": "auto", "messages": [').status == 400
        assert client.chat(user("hi", model="no-such-model")).status == 404
    assert settled(streams) - before == 6


def test_decision_stream_ends_before_the_answer(keyword_stack) -> None:  # type: ignore[no-untyped-def]
    """Envoy tells the router (protocol_config) that no answer comes on the decision stream, so the router ends
    that stream right after its body reply instead of holding it open while the upstream works."""
    import threading
    import urllib.request

    stack, client = keyword_stack

    def active() -> int:
        url = f"http://127.0.0.1:{stack.port(9901)}/stats?filter=^cluster.semrouter.upstream_rq_active$"
        return int(urllib.request.urlopen(url, timeout=5).read().decode().strip().rsplit(":", 1)[1])

    assert eventually(lambda: active() == 0, timeout=5)
    done: list[int] = []
    t = threading.Thread(target=lambda: done.append(
        client.chat(user("hello there", model="qwen3-32b"), {"x-demo-delay-ms": "3000"}).status))
    t.start()
    try:
        time.sleep(1.0)  # the request is at the upstream (3 s): the decision stream has ended, no answer yet
        assert not done
        assert active() == 0
    finally:
        t.join(timeout=30)
    assert done == [200]


def test_join_nonce_never_reaches_the_client(keyword_stack) -> None:
    """The router's observer join nonce (x-semrouter-join) is on the forwarded request and on the answer the observer
    reads, never on what the client gets; the observer still joins every answer (token metrics move)."""
    stack, client = keyword_stack
    import urllib.request

    def completions() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.port(9190)}/metrics", timeout=5) as r:
            return sum(float(line.rsplit(" ", 1)[1]) for line in r.read().decode().splitlines()
                       if line.startswith('llm_model_completion_latency_seconds_count{model="qwen3-32b"}'))

    before = completions()  # settled: an earlier test's answer may still be on its way to the observer
    while (time.sleep(0.5), completions())[1] != before:
        before = completions()
    bodies = {"/v1/chat/completions": user("What is the derivative of x^2?"),
              "/v1/responses": {"model": "auto", "input": "What is the derivative of x^2?"},
              "/v1/messages": {"model": "auto", "max_tokens": 16,
                               "messages": [{"role": "user", "content": "What is the derivative of x^2?"}]}}
    for path, body in bodies.items():
        for stream in (False, True):
            r = client.request("POST", path, json.dumps({**body, "stream": stream}).encode(),
                               {"content-type": "application/json"})
            assert r.status == 200 and r.headers["x-vsr-selected-model"] == "qwen3-32b", (path, r.status)
            assert not [k for k in r.headers if k.startswith("x-semrouter-join")], (path, stream, r.headers)
    deadline = time.monotonic() + 10
    while completions() - before < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert completions() - before == 6  # joined by the nonce the client never saw
