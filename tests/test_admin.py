"""Admin gRPC API over a real grpc.aio server on 127.0.0.1, with a fake backend."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import grpc
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ensure_generated() -> None:
    """semrouter/_gen is gitignored: (re)generate it, a no-op when up to date."""
    subprocess.run([sys.executable, "-m", "modelbuild.gen_proto"], cwd=ROOT, check=True, timeout=120,
                   capture_output=True)


_ensure_generated()

from semrouter.admin.client import AdminCallError, AdminClient, call  # noqa: E402
from semrouter.admin.service import (  # noqa: E402
    AdminError,
    add_admin_service,
    admin_token_for,
    bearer_ok,
    is_loopback,
)
from semrouter.signals.types import PIIEntity  # noqa: E402


class FakeBackend:
    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {
            "e1": {"id": "e1", "tenant": "acme", "model": "big", "prompt": "what is 2+2", "created_at": 1700000000.0,
                   "hits": 3, "response_bytes": 120},
            "e2": {"id": "e2", "tenant": "acme", "model": "small", "prompt": "hello",
                   "created_at": datetime(2024, 1, 1, tzinfo=timezone.utc)},
            "e3": {"id": "e3", "tenant": "other", "model": "big", "prompt": "hi"},
        }
        self.reload_ok = True
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def classify(self, text: str) -> dict[str, Any]:
        self.calls.append(("classify", (text,)))
        if text == "boom":
            raise RuntimeError("onnx session died")
        return {
            "category": "math", "confidence": 0.9, "category_probs": {"math": 0.9, "other": 0.1},
            "jailbreak_score": 0.01, "blocked": False,
            "pii": [PIIEntity("EMAIL_ADDRESS", 5, 16, "a@b.example", 0.99), {"type": "US_SSN", "start": 20, "end": 31}],
            "complexity": 0.7, "small_model_wrong": 0.4, "model": "big", "reason": "category:math", "reasoning": True,
            "timings_ms": {"category": 4.5},
        }

    async def cache_stats(self) -> dict[str, Any]:
        return {"enabled": True, "backend": "milvus", "entries": len(self.entries), "hits": 3, "misses": 1,
                "similarity_threshold": 0.92, "uri": "http://milvus:19530", "ttl_seconds": 3600}

    async def cache_lookup(self, tenant: str, model: str, text: str) -> dict[str, Any] | None:
        for e in self.entries.values():
            if e["tenant"] == tenant and e["model"] == model and e["prompt"] == text:
                return {"similarity": 0.98, "entry_id": e["id"], "entry": e}
        return None

    async def cache_delete(self, entry_id: str, tenant: str, model: str) -> int:
        victims = [k for k, e in self.entries.items()
                   if (not entry_id or k == entry_id) and (not tenant or e["tenant"] == tenant)
                   and (not model or e["model"] == model)]
        for k in victims:
            del self.entries[k]
        return len(victims)

    async def cache_clear(self) -> int:
        n = len(self.entries)
        self.entries.clear()
        return n

    async def cache_list(self, tenant: str, model: str, limit: int) -> list[dict[str, Any]]:
        self.calls.append(("cache_list", (tenant, model, limit)))
        if tenant == "disabled":
            raise AdminError(grpc.StatusCode.FAILED_PRECONDITION, "cache is disabled")
        return [e for e in self.entries.values()
                if (not tenant or e["tenant"] == tenant) and (not model or e["model"] == model)]

    async def get_config(self) -> tuple[str, str, float]:
        return "routing:\n  default_model: big\n", "sha256:abc", 1700000000.5

    async def reload_config(self) -> tuple[bool, str, str]:
        if self.reload_ok:
            return True, "", "sha256:def"
        return False, "routing.default_model: required key is missing", "sha256:abc"


async def _start(backend: FakeBackend, token: str | None) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    add_admin_service(server, backend, token)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
async def admin() -> Any:
    backend = FakeBackend()
    server, target = await _start(backend, None)
    try:
        async with AdminClient(target) as client:
            yield backend, client
    finally:
        await server.stop(None)


async def test_classify(admin: Any) -> None:
    _, client = admin
    r = await client.classify("integrate x^2 dx")
    assert r["category"] == "math" and r["model"] == "big" and r["reason"] == "category:math"
    assert r["confidence"] == pytest.approx(0.9)
    assert r["category_probs"] == {"math": pytest.approx(0.9), "other": pytest.approx(0.1)}
    assert r["reasoning"] is True and r["blocked"] is False
    assert r["complexity"] == pytest.approx(0.7) and r["small_model_wrong"] == pytest.approx(0.4)
    assert [p["type"] for p in r["pii"]] == ["EMAIL_ADDRESS", "US_SSN"]
    assert r["pii"][0] == {"type": "EMAIL_ADDRESS", "start": 5, "end": 16, "score": pytest.approx(0.99)}
    assert "value" not in r["pii"][0]  # the PII text itself never leaves the router
    assert r["latency_ms"] >= 0 and r["timings_ms"] == {"category": 4.5}


async def test_classify_errors(admin: Any) -> None:
    backend, client = admin
    with pytest.raises(AdminCallError) as e:
        await client.classify("   ")
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert not backend.calls  # rejected before reaching the backend
    with pytest.raises(AdminCallError) as e:
        await client.classify("boom")
    assert e.value.code == grpc.StatusCode.INTERNAL and "onnx session died" in str(e.value)


async def test_cache_calls(admin: Any) -> None:
    backend, client = admin
    stats = await client.cache_stats()
    assert stats["entries"] == 3 and stats["backend"] == "milvus"
    assert stats["hit_ratio"] == pytest.approx(0.75)
    assert stats["details"] == {"uri": "http://milvus:19530", "ttl_seconds": "3600"}

    hit = await client.cache_lookup("what is 2+2", tenant="acme", model="big")
    assert hit["hit"] is True and hit["entry_id"] == "e1" and hit["similarity"] == pytest.approx(0.98)
    assert hit["entry"]["hits"] == 3 and hit["entry"]["created_at_unix"] == 1700000000.0
    miss = await client.cache_lookup("what is 2+2", tenant="other", model="big")
    assert miss["hit"] is False and miss["entry"] is None

    listed = await client.cache_list(tenant="acme")
    assert sorted(e["id"] for e in listed["entries"]) == ["e1", "e2"]
    e2 = next(e for e in listed["entries"] if e["id"] == "e2")
    assert e2["created_at_unix"] == datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()
    assert backend.calls[-1] == ("cache_list", ("acme", "", 100))  # default limit
    await client.cache_list(limit=1_000_000)
    assert backend.calls[-1][1][2] == 10_000  # capped
    assert len((await client.cache_list(limit=1))["entries"]) == 1  # enforced even if the backend ignores it

    assert (await client.cache_delete(entry_id="e1"))["deleted"] == 1
    assert (await client.cache_delete(tenant="acme"))["deleted"] == 1
    with pytest.raises(AdminCallError) as e:
        await client.cache_delete()
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "e3" in backend.entries
    assert (await client.cache_clear())["deleted"] == 1
    assert backend.entries == {}


async def test_backend_admin_error_keeps_its_code(admin: Any) -> None:
    _, client = admin
    with pytest.raises(AdminCallError) as e:
        await client.cache_list(tenant="disabled")
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION and "disabled" in e.value.details
    with pytest.raises(AdminCallError) as e:
        await client.cache_list(limit=-1)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_config_calls() -> None:
    backend = FakeBackend()
    server, target = await _start(backend, None)
    try:
        async with AdminClient(target) as client:
            cfg = await client.get_config()
            assert cfg == {"config": "routing:\n  default_model: big\n", "format": "yaml",
                           "version": "sha256:abc", "loaded_at_unix": 1700000000.5}
            assert await client.reload_config() == {"ok": True, "error": "", "version": "sha256:def"}
            backend.reload_ok = False
            r = await client.reload_config()
            assert r["ok"] is False and "default_model" in r["error"] and r["version"] == "sha256:abc"
    finally:
        await server.stop(None)


async def test_token_required_when_set() -> None:
    backend = FakeBackend()
    server, target = await _start(backend, "s3cret")
    try:
        for token in (None, "wrong", "S3CRET", "s3cret-extra"):
            async with AdminClient(target, token=token) as client:
                for coro in (client.cache_clear(), client.classify("x"), client.get_config()):
                    with pytest.raises(AdminCallError) as e:
                        await coro
                    assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
        assert backend.entries and not backend.calls  # nothing reached the backend
        async with AdminClient(target, token="s3cret") as client:
            assert (await client.cache_stats())["entries"] == 3
    finally:
        await server.stop(None)


def test_bearer_parsing() -> None:
    assert bearer_ok([("authorization", "Bearer tok")], "tok")
    assert bearer_ok([("x", "y"), ("Authorization", "bearer  tok ")], "tok")
    assert bearer_ok([("authorization", b"Bearer tok")], "tok")
    assert not bearer_ok([("authorization", "Basic tok")], "tok")
    assert not bearer_ok([("authorization", "Bearer to")], "tok")
    assert not bearer_ok(None, "tok")


async def test_empty_token_rejected() -> None:
    server = grpc.aio.server()
    with pytest.raises(ValueError):
        add_admin_service(server, FakeBackend(), "  ")


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1:50051") and is_loopback("[::1]:50051") and is_loopback("localhost:1")
    assert not is_loopback("0.0.0.0:50051") and not is_loopback("10.1.2.3:50051") and not is_loopback("[::]:1")


def test_admin_token_for() -> None:
    assert admin_token_for("127.0.0.1:50051", None, {}) is None
    assert admin_token_for("127.0.0.1:50051", "cfg", {}) == "cfg"  # a configured token is enforced anyway
    assert admin_token_for("0.0.0.0:50051", None, {"SEMROUTER_ADMIN_TOKEN": " t0k "}) == "t0k"
    assert admin_token_for("0.0.0.0:50051", "cfg", {"SEMROUTER_ADMIN_TOKEN": "env"}) == "cfg"
    for env in ({}, {"SEMROUTER_ADMIN_TOKEN": "  "}):
        with pytest.raises(ValueError, match="SEMROUTER_ADMIN_TOKEN"):
            admin_token_for("0.0.0.0:50051", "", env)


def test_sync_call_helper() -> None:
    import asyncio
    import threading

    ready = threading.Event()
    holder: dict[str, Any] = {}

    def serve() -> None:
        async def main() -> None:
            server, target = await _start(FakeBackend(), "tok")
            holder["target"], holder["stop"] = target, asyncio.Event()
            holder["loop"] = asyncio.get_running_loop()
            ready.set()
            await holder["stop"].wait()
            await server.stop(None)

        asyncio.run(main())

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert ready.wait(10)
    try:
        assert call(holder["target"], "cache_stats", token="tok")["entries"] == 3
        assert call(holder["target"], "cache_lookup", token="tok", text="hi", tenant="other", model="big")["hit"]
        with pytest.raises(AdminCallError):
            call(holder["target"], "cache_stats")
        with pytest.raises(ValueError):
            call(holder["target"], "drop_tables")
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        t.join(10)
    assert not t.is_alive()


def test_generator_is_idempotent(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from modelbuild.gen_proto import PROTO_DIR, generate, up_to_date
    finally:
        sys.path.remove(str(ROOT))
    out = tmp_path / "_gen"
    assert generate(PROTO_DIR, out) is True
    assert up_to_date(PROTO_DIR, out)
    assert generate(PROTO_DIR, out) is False  # skipped when up to date
    grpc_py = (out / "router_pb2_grpc.py").read_text()
    assert "from semrouter._gen import router_pb2 as" in grpc_py
    assert "from semrouter.v1 import" not in grpc_py
    (out / "router_pb2.py").unlink()
    assert not up_to_date(PROTO_DIR, out)
    assert generate(PROTO_DIR, out) is True
