"""Client for a running router's admin API (used by the CLI).

    async with AdminClient("127.0.0.1:50052", token=os.environ.get("SEMROUTER_ADMIN_TOKEN")) as c:
        print(await c.classify("integrate x^2"))

Every method returns a JSON-ready dict. gRPC failures raise `AdminCallError` whose message
names the status (e.g. "UNAUTHENTICATED: missing or invalid ...") so the CLI can print it.
`call(target, method, **kwargs)` is a one-shot synchronous wrapper for CLI commands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import grpc

from semrouter.admin._proto import pb, pb_grpc
from semrouter.admin.convert import to_dict
from semrouter.admin.service import ADMIN_TOKEN_ENV as TOKEN_ENV  # noqa: F401 - for the CLI


class AdminCallError(RuntimeError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class AdminClient:
    def __init__(self, target: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.target = target
        self.timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None

    async def __aenter__(self) -> AdminClient:
        self._channel = grpc.aio.insecure_channel(self.target)
        self._stub = pb_grpc.RouterAdminStub(self._channel)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def _rpc(self, name: str, request: Any) -> dict[str, Any]:
        if self._stub is None:
            raise RuntimeError("use `async with AdminClient(...)`")
        try:
            reply = await getattr(self._stub, name)(request, metadata=self._metadata, timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            raise AdminCallError(e.code(), e.details() or "") from None
        return to_dict(reply)

    async def classify(self, text: str) -> dict[str, Any]:
        return await self._rpc("Classify", pb.ClassifyRequest(text=text))

    async def cache_stats(self) -> dict[str, Any]:
        return await self._rpc("CacheStats", pb.CacheStatsRequest())

    async def cache_lookup(self, text: str, tenant: str = "", model: str = "") -> dict[str, Any]:
        return await self._rpc("CacheLookup", pb.CacheLookupRequest(tenant=tenant, model=model, text=text))

    async def cache_delete(self, entry_id: str = "", tenant: str = "", model: str = "") -> dict[str, Any]:
        return await self._rpc("CacheDelete", pb.CacheDeleteRequest(entry_id=entry_id, tenant=tenant, model=model))

    async def cache_clear(self) -> dict[str, Any]:
        return await self._rpc("CacheClear", pb.CacheClearRequest())

    async def cache_list(self, tenant: str = "", model: str = "", limit: int = 0) -> dict[str, Any]:
        return await self._rpc("CacheList", pb.CacheListRequest(tenant=tenant, model=model, limit=limit))

    async def cache_inspect(self, entry_id: str) -> dict[str, Any]:
        return await self._rpc("CacheInspect", pb.CacheInspectRequest(entry_id=entry_id))

    async def cache_explain(self, text: str, tenant: str = "", model: str = "", category: str = "", api: str = "",
                            request_json: str = "") -> dict[str, Any]:
        return await self._rpc("CacheExplain", pb.CacheExplainRequest(tenant=tenant, model=model, text=text,
                                                                      category=category, api=api,
                                                                      request_json=request_json))

    async def get_config(self) -> dict[str, Any]:
        return await self._rpc("GetConfig", pb.GetConfigRequest())

    async def reload_config(self) -> dict[str, Any]:
        return await self._rpc("ReloadConfig", pb.ReloadConfigRequest())


METHODS = (
    "classify", "cache_stats", "cache_lookup", "cache_delete", "cache_clear", "cache_list", "cache_inspect",
    "cache_explain", "get_config", "reload_config",
)


def call(target: str, method: str, token: str | None = None, timeout: float = 10.0, **kwargs: Any) -> dict[str, Any]:
    """Synchronous one-shot call for CLI commands: `call("127.0.0.1:50052", "cache_stats")`."""
    if method not in METHODS:
        raise ValueError(f"unknown admin method {method!r}; one of {', '.join(METHODS)}")

    async def run() -> dict[str, Any]:
        async with AdminClient(target, token, timeout) as c:
            fn: Callable[..., Awaitable[dict[str, Any]]] = getattr(c, method)
            return await fn(**kwargs)

    return asyncio.run(run())
