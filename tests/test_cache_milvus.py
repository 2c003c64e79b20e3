"""The milvus backend against Milvus Lite embedded, `milvus-lite server` over gRPC, a real Milvus
2.3.5 server (PyPI `milvus`, run inside a private network namespace), and a dead server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from semrouter.cache import CacheConfig, CacheSchemaError, SemanticCache
from semrouter.cache.testing import HashEmbedder, completion
from semrouter.request.parse import ChatRequest

DIM = 32
H = {"x-user-id": "alice"}
IN_NETNS = os.environ.get("SEMROUTER_TEST_IN_NETNS") == "1"


def req(text: str, model: str = "m1") -> ChatRequest:
    messages = ({"role": "user", "content": text},)
    return ChatRequest(body={"model": model, "messages": list(messages)}, model=model, messages=messages,
                       stream=False)


def cfg(uri: str, **over: Any) -> CacheConfig:
    return CacheConfig.model_validate({"enabled": True, "backend": "milvus", "dimension": DIM,
                                       "tenant_from": "trusted_header",  # x-user-id as a proxy-set identity
                                       "similarity_threshold": 0.9, "lookup_timeout_ms": 3000,
                                       "milvus": {"uri": uri, "call_timeout_seconds": 10, **over.pop("milvus", {})},
                                       **over})


from semrouter.devstack import free_port  # noqa: E402  (outside the ephemeral port range)


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"port {port} not open after {timeout}s")


async def roundtrip(uri: str) -> None:
    """The cache's whole contract on one Milvus deployment."""
    class Clock:
        now = 1_700_000_000.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    cache = await SemanticCache.create(cfg(uri, ttl_seconds=60), HashEmbedder(DIM), clock=clock, maintenance=False)
    try:
        assert (await cache.stats())["backend_up"]
        await cache.clear()
        for who, text in (("alice", "How do I bake sourdough bread at home?"), ("bob", "Name a prime number")):
            key = cache.key_for(req(text), {"x-user-id": who})
            cache.store_in_background(key, "cooking", 200, "application/json", completion(f"answer {who}"), False)
        await cache.flush()
        assert (await cache.stats())["counters"]["stores"] == 2
        exact = await cache.lookup(cache.key_for(req(" How do I bake  sourdough bread at home?\n"), H), "cooking")
        assert exact is not None and exact.exact
        assert json.loads(exact.body)["choices"][0]["message"]["content"] == "answer alice"
        para = await cache.lookup(cache.key_for(req("how can you bake sourdough bread at home"), H), None)
        assert para is not None and not para.exact and para.similarity > 0.9
        assert await cache.lookup(cache.key_for(req("Name a prime number"), H), None) is None  # bob's
        assert await cache.lookup(cache.key_for(req("How do I bake sourdough bread at home?", "m2"), H), None) is None
        assert {e["tenant"] for e in await cache.list_entries(tenant="t:bob")} == {"t:bob"}
        clock.now += 61
        assert await cache.lookup(cache.key_for(req("How do I bake sourdough bread at home?"), H), None) is None
        assert (await cache.maintain())["purged"] == 2
        assert (await cache.stats())["entries"] == 0
    finally:
        await cache.close()


async def test_milvus_lite_embedded_schema_mismatch_keeps_data(tmp_path: Path) -> None:
    uri = str(tmp_path / "db" / "cache.db")
    cache = await SemanticCache.create(cfg(uri), HashEmbedder(DIM), maintenance=False)
    key = cache.key_for(req("What is the boiling point of water?"), H)
    cache.store_in_background(key, None, 200, "application/json", completion("100 C"), False)
    await cache.flush()
    await cache.close()
    wrong = cfg(uri, dimension=DIM * 2)
    with pytest.raises(CacheSchemaError, match=r"semrouter_cache.*dimension is 32.*gives 64.*Nothing was changed"):
        await SemanticCache.create(wrong, HashEmbedder(DIM * 2), maintenance=False)
    again = await SemanticCache.create(cfg(uri), HashEmbedder(DIM), maintenance=False)
    try:
        assert (await again.stats())["entries"] == 1
        assert await again.lookup(again.key_for(req("What is the boiling point of water?"), H), None) is not None
    finally:
        await again.close()


async def test_dead_server_fails_open_fast_and_store_does_not_raise() -> None:
    port = free_port()  # nothing listens here
    cache = await SemanticCache.create(cfg(f"http://127.0.0.1:{port}", lookup_timeout_ms=100,
                                           milvus={"call_timeout_seconds": 1}), HashEmbedder(DIM), maintenance=False)
    try:
        stats = await cache.stats()
        assert not stats["backend_up"] and stats["counters"]["backend_errors"] == 1
        key = cache.key_for(req("anything"), H)
        t = time.perf_counter()
        assert await cache.lookup(key, None) is None
        assert time.perf_counter() - t < 0.1
        cache.store_in_background(key, None, 200, "application/json", completion("x"), False)
        await cache.flush()
        assert (await cache.stats())["counters"]["store_skipped_backend_down"] == 1
        # while down, the cache probes (a TCP connect) instead of reconnecting: no full reconnect is tried
        for _ in range(3):
            await cache.maintain()
        counters = (await cache.stats())["counters"]
        assert counters["probes_failed"] == 3 and counters.get("reconnects", 0) == 0
    finally:
        await cache.close()


@pytest.mark.slow
async def test_milvus_lite_server_over_grpc(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "milvus-lite"
    if not exe.exists():
        pytest.skip("milvus-lite CLI not installed")
    port = free_port()
    proc = subprocess.Popen([str(exe), "server", "--data-dir", str(tmp_path / "lite"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await asyncio.to_thread(wait_port, port, proc, 30)
        await roundtrip(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.slow
def test_real_milvus_server_in_network_namespace(tmp_path: Path) -> None:
    """Runs the inner test below inside `unshare --net` (loopback only): Milvus binds all interfaces."""
    if IN_NETNS:
        pytest.skip("already inside the namespace")
    pytest.importorskip("milvus", reason="PyPI `milvus==2.3.5` (the Milvus server) is not installed")
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not available")
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare --net is not permitted here: {probe.stderr.decode().strip()}")
    cmd = (f"ip link set lo up && SEMROUTER_TEST_IN_NETNS=1 {sys.executable} -m pytest -q -x "
           f"-p no:cacheprovider {__file__}::test_inner_real_milvus_server --basetemp={tmp_path / 'inner'}")
    proc = subprocess.Popen(["unshare", "--net", "sh", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-4000:]
    assert "1 passed" in text, text[-4000:]


@pytest.mark.skipif(not IN_NETNS, reason="run by test_real_milvus_server_in_network_namespace inside unshare")
async def test_inner_real_milvus_server(tmp_path: Path) -> None:
    from milvus import default_server  # type: ignore[import-not-found]

    default_server.set_base_dir(str(tmp_path / "milvus"))
    default_server.listen_port = free_port()
    default_server.show_startup_banner = False
    await asyncio.to_thread(default_server.start)
    try:
        await roundtrip(f"http://127.0.0.1:{default_server.listen_port}")
    finally:
        await asyncio.to_thread(default_server.stop)


def test_breaker_reconnects_at_once_when_the_probe_answers_again_and_backs_off_otherwise() -> None:
    from semrouter.cache.health import Breaker

    b = Breaker(initial_s=0.5, max_s=30)
    b.trip(100.0)
    assert not b.may_reconnect(100.0) and b.may_reconnect(100.5)  # first try after the initial back-off
    b.probed(False, 101.0)
    assert not b.may_reconnect(200.0)  # no answer: never a full reconnect
    b.probed(True, 200.0)
    assert b.may_reconnect(200.0)  # it answers again: reconnect now, whatever the back-off
    b.reconnect_failed(200.0)  # answers TCP but the reconnect fails: back off 0.5, 1, 2, ... 30
    assert not b.may_reconnect(200.4) and b.may_reconnect(200.5)
    b.reconnect_failed(200.5)
    assert not b.may_reconnect(201.4) and b.may_reconnect(201.5)
    for _ in range(10):
        b.reconnect_failed(300.0)
    assert b.next_try == 330.0
    b.success()
    assert not b.open and not b.probe_down


async def test_probe_answers_for_a_listening_server_and_not_for_a_closed_port() -> None:
    from semrouter.cache.backend_milvus import MilvusBackend
    from semrouter.cache.config import MilvusConfig

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        up = MilvusBackend(MilvusConfig(uri=f"http://127.0.0.1:{srv.getsockname()[1]}"), DIM, 1.0)
        assert await up.probe()
    down = MilvusBackend(MilvusConfig(uri=f"http://127.0.0.1:{free_port()}"), DIM, 1.0)
    assert not await down.probe()
    assert await MilvusBackend(MilvusConfig(uri="/tmp/x.db"), DIM, 1.0).probe()  # embedded: nothing to probe
