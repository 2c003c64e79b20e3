"""Envoy's overload manager in every shipped config: its own heap and its downstream connections are bounded, so a
flood gets quick replies in the client API's error shape (or closed connections) instead of an Envoy that grows
without limit. Static checks over the configs, then each bound through a real Envoy, made small in a copy."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import eventually, start_stack, user
from test_local_replies import ANTHROPIC, OPENAI_PATHS, _assert_shape, _post, _read_reply
from test_trust_boundary import SHIPPED

ROOT = Path(__file__).resolve().parents[1]
HEAP = "envoy.resource_monitors.fixed_heap"
CONNS = "envoy.resource_monitors.global_downstream_max_connections"


def _monitors(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m["typed_config"] for m in cfg["overload_manager"]["resource_monitors"]}


def _actions(cfg: dict[str, Any]) -> dict[str, float]:
    return {a["name"]: a["triggers"][0]["threshold"]["value"] for a in cfg["overload_manager"]["actions"]}


@pytest.mark.parametrize("name, cfg", SHIPPED, ids=[n for n, _ in SHIPPED])
def test_every_shipped_config_bounds_envoys_heap_and_connections(name: str, cfg: dict[str, Any]) -> None:
    mons = _monitors(cfg)
    assert int(mons[CONNS]["max_active_downstream_connections"]) > 0, name
    assert int(mons[HEAP]["max_heap_size_bytes"]) >= 256 << 20, name
    acts = _actions(cfg)
    # requests stop being accepted before the heap is full, and the heap is shrunk before that
    assert acts["envoy.overload_actions.shrink_heap"] < acts["envoy.overload_actions.stop_accepting_requests"] < 1


def _shrunk_copy(tmp: Path, heap_bytes: int | None = None, connections: int | None = None) -> Path:
    cfg = yaml.safe_load((ROOT / "envoy" / "envoy.yaml").read_text())
    for m in cfg["overload_manager"]["resource_monitors"]:
        if m["name"] == HEAP and heap_bytes is not None:
            m["typed_config"]["max_heap_size_bytes"] = heap_bytes
        if m["name"] == CONNS and connections is not None:
            m["typed_config"]["max_active_downstream_connections"] = connections
    out = tmp / "envoy-shrunk.yaml"
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


@pytest.mark.e2e
def test_envoy_over_its_heap_bound_answers_503_in_each_apis_shape(tmp_path: Path) -> None:
    """A heap bound far below what Envoy uses at rest: stop_accepting_requests fires, and each request gets a quick
    503 in its API's error shape (Anthropic's overloaded_error on /v1/messages), never a hang or a plain-text body."""
    envoy = _shrunk_copy(tmp_path, heap_bytes=1 << 20)
    stack, client = start_stack(tmp_path, {"signals.enabled": False, "cache.enabled": False}, envoy_config=envoy)
    try:  # the monitor is read every refresh_interval: wait for its first reading
        admin = f"http://127.0.0.1:{stack.port(9901)}/stats?filter=stop_accepting_requests.active"
        assert eventually(lambda: b": 1" in urllib.request.urlopen(admin, timeout=5).read(), timeout=10)
        for path in [*OPENAI_PATHS, ANTHROPIC]:
            t0 = time.monotonic()
            r = _post(client, path)
            assert time.monotonic() - t0 < 5
            _assert_shape(path, r, 503, "service_unavailable")
            assert "x-demo-model" not in r.headers
    finally:
        stack.stop()


def _hello(port: int) -> socket.socket:
    """A keep-alive connection that has had one answer (so Envoy has accepted and counted it)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n")
    assert _read_reply(s).status == 200
    return s


@pytest.mark.e2e
def test_connections_over_the_bound_are_closed_and_room_frees_up(tmp_path: Path) -> None:
    envoy = _shrunk_copy(tmp_path, connections=2)
    stack, client = start_stack(tmp_path, {"signals.enabled": False, "cache.enabled": False}, envoy_config=envoy)
    held: list[socket.socket] = []
    try:
        held = [_hello(client.port), _hello(client.port)]
        extra = socket.create_connection(("127.0.0.1", client.port), timeout=10)
        try:  # accepted by the kernel, closed by Envoy at once: no answer
            extra.sendall(b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n")
            got = extra.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            got = b""
        finally:
            extra.close()
        assert got == b""
        held.pop().close()
        deadline = time.monotonic() + 5  # Envoy counts the close once its worker has seen it
        while True:
            try:
                held.append(_hello(client.port))
                break
            except (AssertionError, OSError, IndexError, ValueError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        for s in held:
            s.close()
        stack.stop()


def test_k8s_heap_bound_fits_inside_the_envoy_containers_memory_limit() -> None:
    """Above the container's limit the kernel kills Envoy before the overload manager acts: the bound must leave
    room for Envoy's memory outside the heap (a quarter of the limit here)."""
    units = {"Mi": 1 << 20, "Gi": 1 << 30}
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "deployment.yaml").read_text()))
    pods = [d["spec"]["template"]["spec"] for d in docs if d and d.get("kind") == "Deployment"]
    envoy = next(c for p in pods for c in p["containers"] if "envoy" in c["name"])
    limit = envoy["resources"]["limits"]["memory"]
    limit_bytes = int(limit[:-2]) * units[limit[-2:]]
    cfg = next(c for n, c in SHIPPED if "k8s" in n)
    assert int(_monitors(cfg)[HEAP]["max_heap_size_bytes"]) <= 0.8 * limit_bytes


# ---------------------------------------------------------------- one client's uploads (review12)

def _router_max_body_bytes() -> set[int]:
    """server.max_body_bytes of every shipped router config."""
    docs = [yaml.safe_load((ROOT / p).read_text()) for p in ("config/semrouter.yaml", "deploy/semrouter-compose.yaml")]
    for doc in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "configmap.yaml").read_text()):
        if doc and "semrouter.yaml" in doc.get("data", {}):
            docs.append(yaml.safe_load(doc["data"]["semrouter.yaml"]))
    return {int(d["server"]["max_body_bytes"]) for d in docs}


def _listener(cfg: dict[str, Any]) -> dict[str, Any]:
    return cfg["static_resources"]["listeners"][0]


def _hcm(cfg: dict[str, Any]) -> dict[str, Any]:
    return _listener(cfg)["filter_chains"][0]["filters"][0]["typed_config"]


@pytest.mark.parametrize("name, cfg", SHIPPED, ids=[n for n, _ in SHIPPED])
def test_every_shipped_config_bounds_what_one_upload_and_one_connection_hold(name: str, cfg: dict[str, Any]) -> None:
    """Each body being received holds up to the buffer limit of Envoy's heap: just above the router's
    max_body_bytes (8 MiB before, twice what any shipped router accepts). Under HTTP/2 a stream's body limit is its
    window (Envoy's default 16 MiB) and a connection had 1,024 streams. The decision filter sends the client's
    address, which the router's per-client bound needs."""
    limit = int(_listener(cfg)["per_connection_buffer_limit_bytes"])
    bodies = _router_max_body_bytes()
    assert max(bodies) < limit <= min(bodies) + (128 << 10), (name, limit, bodies)
    h2 = _hcm(cfg)["http2_protocol_options"]
    assert int(h2["initial_stream_window_size"]) <= limit, name
    assert int(h2["max_concurrent_streams"]) * limit <= 0.2 * int(_monitors(cfg)[HEAP]["max_heap_size_bytes"]), name
    ext_proc = next(f["typed_config"] for f in _hcm(cfg)["http_filters"] if f["name"] == "envoy.filters.http.ext_proc")
    assert "source.address" in ext_proc["request_attributes"], name
    # ... and that address is the connection's peer, not the last x-forwarded-for entry a client wrote
    assert _hcm(cfg).get("use_remote_address") is True and not _hcm(cfg).get("xff_num_trusted_hops"), name


def _held_upload(port: int, source: str, clen: int, size: int) -> socket.socket:
    """A chat request from `source` that announces `clen` bytes of body, sends `size` of them and waits."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
              b"content-length: %d\r\n\r\n" % clen)
    s.settimeout(3)
    try:
        s.sendall(b" " * size)
    except OSError:  # refused at its headers: Envoy answered and closed
        pass
    return s


@pytest.mark.e2e
def test_one_clients_held_uploads_leave_other_clients_their_answers(tmp_path: Path) -> None:
    """One client (127.0.0.2) opens 40 chat requests, sends as much of each body as Envoy buffers and then a byte
    now and then (no idle timeout fires). Before, every upload held up to 8 MiB of Envoy's heap for request_timeout
    (120 s): with a 128 MiB heap bound, 18 of them made the overload manager answer every client 503. Now the router
    refuses that address's requests past server.max_uploads_per_client (16) at their headers, before Envoy buffers
    their bodies: the others get 429 too_many_uploads, another client (127.0.0.1) gets its answers, and once the
    uploads end the address may send again."""
    envoy = _shrunk_copy(tmp_path, heap_bytes=128 << 20)
    limit = int(yaml.safe_load(envoy.read_text())["static_resources"]["listeners"][0]
                ["per_connection_buffer_limit_bytes"])
    size = min(7 << 20, limit - (64 << 10))
    stack, client = start_stack(tmp_path, {"signals.enabled": False, "cache.enabled": False}, envoy_config=envoy)
    held: list[socket.socket] = []
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.5):
            for s in held:
                try:
                    s.send(b" ")
                except OSError:
                    pass

    ticker = threading.Thread(target=trickle, daemon=True)
    try:
        held.extend(_held_upload(client.port, "127.0.0.2", size + (1 << 20), size) for _ in range(40))
        ticker.start()
        time.sleep(1.0)  # the heap monitor reads every 0.25 s
        for _ in range(3):
            r = client.chat(user("What is the capital of Norway?"))
            assert r.status == 200, (r.status, r.body[:200])
        refused = 0
        for s in held:
            s.settimeout(0.2)
            try:
                reply = _read_reply(s)
            except (OSError, ValueError, IndexError):
                continue
            assert reply.status == 429 and reply.json()["error"]["code"] == "too_many_uploads", reply
            refused += 1
        assert refused >= 40 - 16
    finally:
        stop.set()
        if ticker.is_alive():
            ticker.join(timeout=5)
        for s in held:
            s.close()
    try:  # the slots are given back when the streams end
        def answered() -> bool:
            s = socket.create_connection(("127.0.0.1", client.port), timeout=10, source_address=("127.0.0.2", 0))
            with s:
                body = json.dumps(user("What is the capital of Norway?")).encode()
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                          b"content-length: %d\r\n\r\n%s" % (len(body), body))
                return _read_reply(s).status == 200
        assert eventually(answered, timeout=10, every=0.2)
    finally:
        stack.stop()


@pytest.mark.e2e
@pytest.mark.parametrize("spoof", ["x-forwarded-for: 203.0.113.7", "x-forwarded-for: 127.0.0.2, 198.51.100.9",
                                   "x-real-ip: 203.0.113.8", "source.address: 203.0.113.9"])
def test_a_client_cannot_name_its_own_address_to_the_upload_bound(tmp_path: Path, spoof: str) -> None:
    """The bound counts the address Envoy sees the connection from, whatever the request's headers say. Before, the
    shipped configs left use_remote_address off, so Envoy took the client's address from the last x-forwarded-for
    entry: one client naming a new address in each request got a new set of slots each time (no bound at all)."""
    stack, client = start_stack(tmp_path, {"signals.enabled": False, "cache.enabled": False,
                                           "server.max_uploads_per_client": 1})
    held: list[socket.socket] = []
    try:
        held.append(_held_upload(client.port, "127.0.0.2", 4096, 1024))
        time.sleep(0.3)  # its headers have reached the router: the address's one slot is taken
        s = socket.create_connection(("127.0.0.1", client.port), timeout=10, source_address=("127.0.0.2", 0))
        held.append(s)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                  b"%s\r\ncontent-length: 4096\r\n\r\n" % spoof.encode())
        s.settimeout(5)
        reply = _read_reply(s)
        assert reply.status == 429 and reply.json()["error"]["code"] == "too_many_uploads", reply
    finally:
        for s in held:
            s.close()
        stack.stop()
