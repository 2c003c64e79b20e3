"""Issue 12's trust boundary, Envoy side: what a client sends to the public listener cannot pick a cluster or an
endpoint, reach an admin API, forge a decision, read another tenant's answer, skip the router by spelling a path
differently, or make Envoy run an LLM call twice. Static checks over every shipped Envoy config, then the same
properties through a real Envoy + router + demo upstreams (docs/SECURITY.md)."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import Client, Reply, eventually, start_stack, user
from semrouter import headers as H
from semrouter.config import load_config
from semrouter.devstack import ROOT, Stack

# ---------------------------------------------------------------- static: every shipped Envoy config


def _shipped() -> list[tuple[str, dict[str, Any]]]:
    out = [(str(p.relative_to(ROOT)), yaml.safe_load(p.read_text()))
           for p in sorted([*ROOT.glob("envoy/*.yaml"), *ROOT.glob("deploy/**/envoy*.yaml")])]
    for doc in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "configmap.yaml").read_text()):
        if doc and "envoy.yaml" in doc.get("data", {}):
            out.append(("deploy/k8s/configmap.yaml", yaml.safe_load(doc["data"]["envoy.yaml"])))
    return out


SHIPPED = _shipped()


def _hcm(cfg: dict[str, Any]) -> dict[str, Any]:
    return cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def _stripped_by(cfg: dict[str, Any]) -> Any:
    """A predicate: does this config's early header mutation remove a client header of this name?"""
    rules = []
    for ext in _hcm(cfg).get("early_header_mutation_extensions", []):
        assert ext["name"] == "envoy.http.early_header_mutation.header_mutation"
        rules += ext["typed_config"]["mutations"]

    def matches(m: dict[str, Any], name: str) -> bool:
        if "exact" in m:
            return name == m["exact"]
        if "prefix" in m:
            return name.startswith(m["prefix"])
        if "safe_regex" in m:
            return re.fullmatch(m["safe_regex"]["regex"], name) is not None
        raise AssertionError(f"unexpected matcher {m}")

    def stripped(name: str) -> bool:
        return any(r.get("remove") == name or ("remove_on_match" in r and matches(r["remove_on_match"]["key_matcher"],
                                                                                   name)) for r in rules)
    return stripped


def test_every_shipped_config_is_checked() -> None:
    names = {n for n, _ in SHIPPED}
    assert {"envoy/envoy.yaml", "envoy/envoy-original-dst.yaml", "deploy/envoy-compose.yaml",
            "deploy/k8s/configmap.yaml"} <= names


@pytest.mark.parametrize("name, cfg", SHIPPED, ids=[n for n, _ in SHIPPED])
def test_router_namespace_is_stripped_before_routing(name: str, cfg: dict[str, Any]) -> None:
    stripped = _stripped_by(cfg)
    for h in (*H.ROUTER_SET, "x-vsr-injected-system-prompt", "x-vsr-anything", "x-semrouter-", "x-semrouter-c",
              "x-semrouter-cach", "x-semrouter-cache-bypass", "x-semrouter-cluster2", "x-envoy-retry-on",
              "x-envoy-max-retries", "x-envoy-upstream-rq-timeout-ms", "x-envoy-original-dst-host"):
        assert stripped(h), f"{name}: a client-sent {h} reaches routing"
    for h in (*H.CLIENT_CONTROLS, H.USER_ID, H.AUTHORIZATION, H.REQUEST_ID, "content-type", "x-api-key"):
        assert not stripped(h), f"{name}: the client header {h} is removed"


@pytest.mark.parametrize("name, cfg", SHIPPED, ids=[n for n, _ in SHIPPED])
def test_paths_retries_and_failure_shape(name: str, cfg: dict[str, Any]) -> None:
    hcm = _hcm(cfg)
    assert hcm["normalize_path"] is True and hcm["merge_slashes"] is True, name
    assert hcm["path_with_escaped_slashes_action"] == "UNESCAPE_AND_FORWARD", name
    vhost = hcm["route_config"]["virtual_hosts"][0]
    copied = {h["header"]["key"]: h["header"]["value"] for h in vhost["response_headers_to_add"]}
    assert copied[H.JOIN] == f"%REQ({H.JOIN})%", name  # the observer joins on the router's nonce
    first = hcm["http_filters"][0]  # ... and the first filter (the last on the answer) removes it from the answer
    assert first["name"] == "envoy.filters.http.header_mutation", name
    assert {"remove": H.JOIN} in first["typed_config"]["mutations"]["response_mutations"], name
    for h in (H.SELECTED_MODEL, H.SELECTED_CATEGORY, H.JAILBREAK_TYPE):  # report-only safety labels too
        assert copied[h] == f"%REQ({h})%", f"{name}: {h} is not copied onto answers"
    safe = {"connect-failure", "refused-stream", "reset-before-request"}
    for r in vhost["routes"]:
        policy = (r.get("route") or {}).get("retry_policy")
        if policy:
            assert set(policy["retry_on"].split(",")) <= safe, f"{name}: retries after the upstream saw the call"
    # a request the router left undecided (down, too slow, failed) on a path that is not one of the APIs: a 404,
    # never an upstream's own endpoints
    assert vhost["routes"][-1] == {"match": {"prefix": "/"}, "direct_response": {"status": 404}}, name
    ext_proc = next(f["typed_config"] for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.ext_proc")
    assert ext_proc["status_on_error"] == {"code": "ServiceUnavailable"}, name
    # the request's body (one buffered message) and trailers come to the router: a request with trailers and no
    # body gets no body message, and would otherwise go on undecided (tests/test_e2e_hostile.py)
    mode = ext_proc["processing_mode"]
    assert mode["request_body_mode"] == "BUFFERED" and mode["request_trailer_mode"] == "SEND", name
    # its 503 (and every other reply Envoy writes) in the API's error shape: tests/test_local_replies.py


def test_original_dst_allow_list_is_the_router_config() -> None:
    cfg = yaml.safe_load((ROOT / "envoy" / "envoy-original-dst.yaml").read_text())
    routes = _hcm(cfg)["route_config"]["virtual_hosts"][0]["routes"]
    (allow,) = [r for r in routes if r.get("route", {}).get("cluster") == "semrouter_dynamic"]
    (hm,) = allow["match"]["headers"]
    assert hm["name"] == H.DESTINATION_ENDPOINT
    regex = hm["string_match"]["safe_regex"]["regex"]
    router = load_config(ROOT / "config" / "semrouter.yaml")
    for m in router.models:
        for e in m.endpoints:
            assert re.fullmatch(regex, e.hostport), e.hostport
    admin = cfg["admin"]["address"]["socket_address"]
    for never in (f"{admin['address']}:{admin['port_value']}", router.server.listen, router.server.admin_listen,
                  "127.0.0.1:80010", "127.0.0.1:8001/x", "10.0.0.1:8001"):
        assert not re.fullmatch(regex, str(never)), never


def test_canonical_path_folds_what_a_proxy_may_leave() -> None:
    """The router's own folding, for a router behind a proxy that does not normalise (Envoy's shipped configs do)."""
    from semrouter.request.paths import canonical_path, query_of

    for raw in ("/v1/chat/completions", "/V1/Chat/Completions/", "//v1//chat/completions", "/v1/./chat/completions",
                "/v1/x/../chat/completions", "/v1/%63hat/completions", "/v1%2Fchat%2Fcompletions",
                "/v1\\chat\\completions", "/v1/chat/completions?stream=1", "/../v1/chat/completions"):
        assert canonical_path(raw) == "/v1/chat/completions", raw
    for other in ("/v1/chat/completions/x", "/v1/chat/completion", "/v2/chat/completions", "/", ""):
        assert canonical_path(other) != "/v1/chat/completions", other
    assert query_of("/p?a=1&b=2") == "?a=1&b=2" and query_of("/p") == ""


# ---------------------------------------------------------------- through a real Envoy


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Client]]:
    """The shipped envoy.yaml and router config (signals and the Milvus Lite cache on)."""
    tmp = tmp_path_factory.mktemp("trust")
    stack, client = start_stack(tmp, {"cache.milvus.uri": str(tmp / "milvus" / "cache.db"),
                                      "cache.lookup_timeout_ms": 2000})
    try:
        yield stack, client
    finally:
        stack.stop()


FORGED = {h: "forged" for h in (*H.ROUTER_SET, "x-vsr-injected-system-prompt", "x-semrouter-anything")}


def _seen(r: Reply) -> dict[str, str]:
    """Headers of the router's and Envoy's namespaces the demo upstream received (x-demo-echo: headers)."""
    assert "x-demo-seen" in r.headers, (r.status, r.body[:200])
    return json.loads(r.headers["x-demo-seen"])


def test_client_routing_and_decision_headers_never_reach_the_upstream(full) -> None:  # type: ignore[no-untyped-def]
    stack, client = full
    echo = {**FORGED, "x-demo-echo": "headers", "x-envoy-retry-on": "5xx"}
    r = client.request("POST", "/v1/chat/completions?via=query", json.dumps(user("hello", model="llama-3.1-8b"))
                       .encode(), {"content-type": "application/json", **echo})
    assert r.status == 200
    seen = _seen(r)
    assert "forged" not in seen.values(), seen
    assert seen[H.SELECTED_MODEL] == "llama-3.1-8b" and seen[H.CLUSTER] == "llama-3.1-8b"  # the router's own
    assert "x-envoy-retry-on" not in seen
    # the router's choice wins over a client's cluster on every path
    r = client.chat(user("hello there", model="llama-3.1-8b"), {H.CLUSTER: "qwen3-32b", "x-demo-echo": "headers"})
    assert r.headers["x-demo-model"] == "llama-3.1-8b"


def test_client_cluster_on_a_path_the_router_does_not_own(full) -> None:  # type: ignore[no-untyped-def]
    """Issue 12 item 1: `POST /v1/completions` with `x-semrouter-cluster: qwen3-32b` used to land on the large
    model (Envoy kept the route it chose from the client's header)."""
    stack, client = full
    large = _upstream_requests(stack, "qwen3-32b")
    for cluster in ("qwen3-32b", "semrouter"):
        for path in ("/v1/completions", "/v1/chat/completions/../../completions", "/v1/embeddings"):
            r = client.request("POST", path, b"{}", {"content-type": "application/json", H.CLUSTER: cluster})
            assert r.status == 404, (cluster, path, r.status, r.body[:200])  # the default model's demo: no such path
    assert _upstream_requests(stack, "qwen3-32b") == large


def test_admin_api_is_not_reachable_through_the_data_plane(full) -> None:  # type: ignore[no-untyped-def]
    """A gRPC admin call sent to Envoy's listener, asking for the router's cluster, reaches no admin API."""
    import grpc

    from semrouter.admin._proto import pb, pb_grpc

    stack, _ = full
    with grpc.insecure_channel(f"127.0.0.1:{stack.port(8801)}") as ch:
        stub = pb_grpc.RouterAdminStub(ch)
        for call, req in ((stub.CacheList, pb.CacheListRequest(limit=10)), (stub.GetConfig, pb.GetConfigRequest()),
                          (stub.CacheClear, pb.CacheClearRequest())):
            with pytest.raises(grpc.RpcError) as e:
                call(req, metadata=((H.CLUSTER, "semrouter"),), timeout=10)
            assert e.value.code() != grpc.StatusCode.OK
    with grpc.insecure_channel(f"127.0.0.1:{stack.port(50051)}") as ch:  # nor on the ext_proc port itself
        with pytest.raises(grpc.RpcError) as e:
            pb_grpc.RouterAdminStub(ch).GetConfig(pb.GetConfigRequest(), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize("path", ["/v1/chat/completions/", "//v1/chat/completions", "/V1/Chat/Completions",
                                  "/v1/./chat/completions", "/v1/x/../chat/completions", "/v1/%63hat/completions",
                                  "/v1%2Fchat%2Fcompletions", "/v1/chat/completions?x=1"])
def test_path_variants_go_through_the_router(full, path: str) -> None:  # type: ignore[no-untyped-def]
    stack, client = full
    hdrs = {"content-type": "application/json"}
    r = client.request("POST", path, b"{not json", hdrs)
    assert r.status == 400 and r.json()["error"]["code"] == "invalid_json", (path, r.status, r.body[:200])
    r = client.request("POST", path, json.dumps(user("hello", model="llama-3.1-8b")).encode(), hdrs)
    assert r.status == 200 and r.headers[H.SELECTED_MODEL] == "llama-3.1-8b", (path, r.status)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_on_the_chat_path_get_405(full, method: str) -> None:  # type: ignore[no-untyped-def]
    stack, client = full
    for path in ("/v1/chat/completions", "/V1/chat/completions/"):
        r = client.request(method, path, b"{}" if method != "GET" else None, {"content-type": "application/json"})
        assert r.status == 405, (method, path, r.status)
        assert r.headers["allow"] == "POST"
        err = r.json()["error"]
        assert err["code"] == "method_not_allowed" and err["type"] == "invalid_request_error"


def _upstream_requests(stack: Stack, cluster: str) -> int:
    """Requests Envoy has sent to `cluster` so far (its admin stats)."""
    url = f"http://127.0.0.1:{stack.port(9901)}/stats?filter=^cluster.{re.escape(cluster)}.upstream_rq_total$"
    text = urllib.request.urlopen(url, timeout=5).read().decode().strip()
    return int(text.rsplit(":", 1)[1]) if text else 0


def _admin_entries(stack: Stack) -> int:
    from semrouter.admin.client import call

    return int(call(f"127.0.0.1:{stack.port(50052)}", "cache_stats")["entries"])


def test_same_request_id_never_crosses_tenants(full) -> None:  # type: ignore[no-untyped-def]
    """Issue 12 item 2: the victim's answer is still on its way when the attacker's request, with the same
    x-request-id, is decided. Joined by x-request-id, the victim's answer was stored under the attacker's tenant
    and prompt (and the victim's never); joined by the router's nonce each answer lands where it belongs."""
    stack, client = full
    rid = {"x-request-id": "0f9d8c7b-shared"}
    victim = {"x-user-id": "victim", "authorization": "Bearer victim-key", **rid}
    attacker = {"x-user-id": "attacker", "authorization": "Bearer attacker-key", **rid}
    v_prompt, a_prompt = "What are good names for a pet turtle?", "How long should I boil an egg?"
    before = _admin_entries(stack)
    out: dict[str, Reply] = {}
    t = threading.Thread(target=lambda: out.update(v=client.chat(user(v_prompt), {**victim,
                                                                                 "x-demo-delay-ms": "1500"})))
    t.start()
    time.sleep(0.5)  # the victim's request is decided and waiting on its upstream
    out["a"] = client.chat(user(a_prompt), {**attacker, "x-demo-delay-ms": "3000"})
    t.join()
    assert out["v"].status == out["a"].status == 200
    assert eventually(lambda: _admin_entries(stack) >= before + 2), "both answers are stored"
    again = client.chat(user(a_prompt), attacker)
    assert again.headers.get(H.CACHE_HIT) == "true"
    content = again.json()["choices"][0]["message"]["content"]
    assert "turtle" not in content and "boil an egg" in content
    again = client.chat(user(v_prompt), victim)
    assert again.headers.get(H.CACHE_HIT) == "true"
    assert "turtle" in again.json()["choices"][0]["message"]["content"]


def test_cache_hits_carry_the_decision_headers(full) -> None:  # type: ignore[no-untyped-def]
    stack, client = full
    who = {"x-user-id": "hits", "authorization": "Bearer hits-key"}
    first = client.chat(user("What is the capital of Australia?", model="qwen3-32b"), who)
    assert first.status == 200 and first.headers[H.SELECTED_MODEL] == "qwen3-32b"
    assert eventually(lambda: client.chat(user("What is the capital of Australia?", model="qwen3-32b"),
                                          who).headers.get(H.CACHE_HIT) == "true")
    hit = client.chat(user("What is the capital of Australia?", model="qwen3-32b", stream=True), who)
    assert hit.headers[H.CACHE_HIT] == "true" and hit.headers[H.DECISION_REASON] == "cache_hit"
    assert hit.headers[H.SELECTED_MODEL] == "qwen3-32b"


def _requests_seen(stack: Stack, shipped_port: int) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{stack.port(shipped_port)}/_demo/fault", data=b'{"status": 0}',
                                 headers={"content-type": "application/json"})
    return int(json.loads(urllib.request.urlopen(req, timeout=5).read())["requests_seen"])


def test_a_reset_post_reaches_the_upstream_once(full) -> None:  # type: ignore[no-untyped-def]
    """Issue 17: with `reset` in retry_on, an upstream that drops the connection after reading the request got
    the same LLM call three times. Only failures before anything reached the upstream are retried now."""
    stack, client = full
    before = _requests_seen(stack, 8002)
    r = client.chat(user("reset me", model="qwen3-32b"), {"x-demo-reset": "1", "x-envoy-max-retries": "5",
                                                          "x-envoy-retry-on": "reset,5xx"})
    assert _requests_seen(stack, 8002) - before == 1
    assert r.status == 503 and r.json()["error"]["code"] == "service_unavailable"


def _kill_router(stack: Stack) -> None:
    p = stack.procs["router"]
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=15)


KEYWORD_ONLY = {"signals.enabled": False, "cache.enabled": False}


def test_fail_open_routes_to_the_default_model_with_client_headers_stripped(tmp_path: Path) -> None:
    stack, client = start_stack(tmp_path, KEYWORD_ONLY)
    try:
        assert client.chat(user("What is the derivative of x^3?")).headers["x-demo-model"] == "qwen3-32b"
        _kill_router(stack)
        large = _upstream_requests(stack, "qwen3-32b")
        hdrs = {"content-type": "application/json", **FORGED, H.CLUSTER: "qwen3-32b", "x-demo-echo": "headers"}
        r = client.request("POST", "/v1/chat/completions", json.dumps(user("What is the derivative of x^3?"))
                           .encode(), hdrs)
        assert r.status == 200 and r.headers["x-demo-model"] == "llama-3.1-8b"
        seen = _seen(r)  # nothing of the router's namespace (the router is down: it set none either)
        assert not [k for k in seen if not k.startswith("x-envoy-")] and "forged" not in seen.values(), seen
        for path in ("/V1/chat/completions/", "/v1/completions", "/v1/x/../chat/completions"):
            client.request("POST", path, json.dumps(user("x")).encode(), hdrs)
        assert _upstream_requests(stack, "qwen3-32b") == large
        # failing open serves the APIs, not an upstream's own endpoints: any other path is Envoy's 404 (it went to
        # the default model's server: vLLM's /metrics, /tokenize, /sleep whenever the router was down or too slow)
        small = _upstream_requests(stack, "llama-3.1-8b")
        for method, path in (("GET", "/metrics"), ("POST", "/tokenize"), ("GET", "/health"), ("POST", "/sleep"),
                             ("GET", "/v1/embeddings"), ("GET", "/")):
            r = client.request(method, path, b"{}" if method == "POST" else None, hdrs)
            assert r.status == 404 and r.json()["error"]["code"] == "unknown_url", (path, r.status, r.body[:200])
        r = client.request("GET", "/metrics", None, {"anthropic-version": "2023-06-01"})
        assert r.status == 404 and r.json()["type"] == "error", r.body[:200]
        assert _upstream_requests(stack, "llama-3.1-8b") == small
        # the APIs' own paths, in the spellings the router folds, still fail open; nothing else under them
        for path in ("/V1/chat/completions/", "/v1/responses/", "/v1/Messages"):  # sent on as spelled (no router)
            before = _upstream_requests(stack, "llama-3.1-8b")
            client.request("POST", path, json.dumps(user("x")).encode(), {"content-type": "application/json"})
            assert _upstream_requests(stack, "llama-3.1-8b") == before + 1, path
        for path in ("/v1/chat/completions/x", "/v1/chat/completionsx", "/v1/messages/count_tokens"):
            r = client.request("POST", path, json.dumps(user("x")).encode(), {"content-type": "application/json"})
            assert r.status == 404 and "x-demo-model" not in r.headers, (path, r.status)
    finally:
        stack.stop()


def test_fail_closed_answers_503_in_openai_shape(tmp_path: Path) -> None:
    from conftest import SHIPPED_PORTS
    from semrouter.devstack import free_port

    ports = {p: free_port() for p in SHIPPED_PORTS}
    stack = Stack(ports=ports, overrides=KEYWORD_ONLY, workdir=tmp_path, log_dir=tmp_path / "logs",
                  failure_mode="closed").start()
    client = Client(ports[8801])
    try:
        assert client.chat(user("hello")).status == 200
        stack.procs["router"].send_signal(signal.SIGSTOP)  # too slow: no answer within message_timeout (5 s)
        try:
            r = client.chat(user("hello"), {H.CLUSTER: "qwen3-32b"})
        finally:
            stack.procs["router"].send_signal(signal.SIGCONT)
        assert r.status == 504 and r.headers["content-type"] == "application/json"
        assert r.json()["error"]["code"] == "timeout" and "x-demo-model" not in r.headers
        _kill_router(stack)  # down
        r = client.chat(user("hello"), {H.CLUSTER: "qwen3-32b"})
        assert r.status == 503 and r.headers["content-type"] == "application/json"
        err = r.json()["error"]
        assert err["code"] == "service_unavailable" and err["type"] == "server_error"
        assert "x-demo-model" not in r.headers  # nothing reached an upstream
    finally:
        stack.stop()


def test_original_dst_never_reaches_envoy_admin(tmp_path: Path) -> None:
    """Issue 12 item 4: with envoy-original-dst.yaml, `x-vsr-destination-endpoint: 127.0.0.1:<admin>` reached
    Envoy's own admin (/config_dump 200), with the router up or down."""
    stack, client = start_stack(tmp_path, {**KEYWORD_ONLY, "routing.endpoint_selection": "original_dst"},
                                envoy_config=ROOT / "envoy" / "envoy-original-dst.yaml")
    admin = f"127.0.0.1:{stack.port(9901)}"
    try:
        for phase in ("router up", "router down"):
            for method, path in (("GET", "/config_dump"), ("POST", "/v1/chat/completions"), ("POST", "/quitquitquit")):
                body = json.dumps(user("hello")).encode() if method == "POST" else None
                r = client.request(method, path, body, {"content-type": "application/json",
                                                        H.DESTINATION_ENDPOINT: admin})
                assert b"configs" not in r.body and b"OK\n" != r.body, (phase, path, r.status)
                assert r.headers.get("x-demo-model", "llama-3.1-8b") == "llama-3.1-8b", (phase, path)
            if phase == "router up":
                _kill_router(stack)
        with urllib.request.urlopen(f"http://{admin}/ready", timeout=5) as ready:  # and Envoy is still running
            assert ready.status == 200
    finally:
        stack.stop()
