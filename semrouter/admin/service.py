"""The `semrouter.v1.RouterAdmin` gRPC service, implemented against an `AdminBackend`.

The lead's router implements `AdminBackend` (plain async methods returning dicts); this module
turns them into the admin API, checks the bearer token and maps exceptions to gRPC codes:

    AdminError(code, msg) → that code     ValueError → INVALID_ARGUMENT
    LookupError           → NOT_FOUND     NotImplementedError → UNIMPLEMENTED
    anything else         → INTERNAL (logged with its traceback)
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

import grpc
import structlog

from semrouter.admin import convert
from semrouter.admin._proto import SERVICE_NAME, pb, pb_grpc

log = structlog.get_logger("semrouter.admin")

DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 10_000
MAX_TEXT_CHARS = 200_000

T = TypeVar("T")


class AdminBackend(Protocol):
    """What the router provides to the admin API. Dict shapes: see docs/ADMIN.md."""

    async def classify(self, text: str) -> dict[str, Any]: ...

    async def cache_stats(self) -> dict[str, Any]: ...

    async def cache_lookup(self, tenant: str, model: str, text: str) -> dict[str, Any] | None: ...

    async def cache_delete(self, entry_id: str, tenant: str, model: str) -> int: ...

    async def cache_clear(self) -> int: ...

    async def cache_list(self, tenant: str, model: str, limit: int) -> list[dict[str, Any]]: ...

    async def cache_inspect(self, entry_id: str) -> dict[str, Any]:
        """`Entry.summary(with_body=True)`; raises LookupError when there is no such entry."""

    async def cache_explain(self, tenant: str, model: str, text: str, category: str, api: str = "",
                            request_json: str = "") -> dict[str, Any]:
        """`SemanticCache.explain()`'s dict for `text` as the last user message, or for the whole request body
        `request_json` of `api` (chat, responses, messages) when given."""

    async def get_config(self) -> tuple[str, str, float | datetime]: ...

    async def reload_config(self) -> tuple[bool, str, str]: ...


class AdminError(Exception):
    """Raised by a backend to answer with a specific gRPC status, e.g. FAILED_PRECONDITION
    when the cache is disabled."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def bearer_ok(metadata: Sequence[tuple[str, str | bytes]] | None, token: str) -> bool:
    """True when metadata carries `authorization: Bearer <token>` (scheme case-insensitive)."""
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        v = value.decode("latin-1") if isinstance(value, bytes) else value
        scheme, _, given = v.strip().partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    return False


TokenSource = str | None | Callable[[], str | None]
"""The admin token: fixed, None (no auth), or read at every call (the router's current config: a reload that
rotates `server.admin_token` applies at once)."""


class RouterAdminServicer(pb_grpc.RouterAdminServicer):
    def __init__(self, backend: AdminBackend, token: TokenSource = None) -> None:
        if isinstance(token, str) and not token.strip():
            raise ValueError("admin token must not be empty (pass None to disable auth)")
        self._backend = backend
        self._token = token

    async def _call(self, context: grpc.aio.ServicerContext, method: str, fn: Callable[[], Awaitable[T]]) -> T:
        token = self._token() if callable(self._token) else self._token
        if token is not None and not (token.strip() and bearer_ok(context.invocation_metadata(), token)):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid 'authorization: Bearer <token>'")
        try:
            return await fn()
        except AdminError as e:
            await context.abort(e.code, e.message)
        except ValueError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except LookupError as e:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(e) or "not found")
        except NotImplementedError as e:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, str(e) or f"{method} is not available")
        except Exception as e:  # noqa: BLE001 - every other failure becomes INTERNAL, with a log line
            if isinstance(e, grpc.aio.AbortError):
                raise
            log.exception("admin_call_failed", method=method)
            await context.abort(grpc.StatusCode.INTERNAL, f"{method} failed: {type(e).__name__}: {e}")
        raise AssertionError("unreachable")  # context.abort always raises

    # -------------------------------------------------------------- classify
    async def Classify(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def run() -> Any:
            text = request.text
            if not text.strip():
                raise ValueError("text must not be empty")
            if len(text) > MAX_TEXT_CHARS:
                raise ValueError(f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
            start = time.perf_counter()
            result = await self._backend.classify(text)
            return convert.classify_response(result, (time.perf_counter() - start) * 1000.0)

        return await self._call(context, "Classify", run)

    # -------------------------------------------------------------- cache
    async def CacheStats(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def run() -> Any:
            return convert.cache_stats_response(await self._backend.cache_stats())

        return await self._call(context, "CacheStats", run)

    async def CacheLookup(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def run() -> Any:
            if not request.text.strip():
                raise ValueError("text must not be empty")
            found = await self._backend.cache_lookup(request.tenant, request.model, request.text)
            return convert.cache_lookup_response(found)

        return await self._call(context, "CacheLookup", run)

    async def CacheDelete(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def run() -> Any:
            if not (request.entry_id or request.tenant or request.model):
                raise ValueError("set entry_id, tenant or model (use CacheClear to delete everything)")
            n = await self._backend.cache_delete(request.entry_id, request.tenant, request.model)
            return pb.CacheDeleteResponse(deleted=int(n))

        return await self._call(context, "CacheDelete", run)

    async def CacheClear(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def run() -> Any:
            return pb.CacheClearResponse(deleted=int(await self._backend.cache_clear()))

        return await self._call(context, "CacheClear", run)

    async def CacheList(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def run() -> Any:
            if request.limit < 0:
                raise ValueError("limit must not be negative")
            limit = min(request.limit or DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
            entries = await self._backend.cache_list(request.tenant, request.model, limit)
            return convert.cache_list_response(list(entries)[:limit])

        return await self._call(context, "CacheList", run)

    async def CacheInspect(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def run() -> Any:
            if not request.entry_id.strip():
                raise ValueError("entry_id must not be empty")
            return convert.cache_entry(await self._backend.cache_inspect(request.entry_id))

        return await self._call(context, "CacheInspect", run)

    async def CacheExplain(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def run() -> Any:
            if not request.text.strip() and not request.request_json.strip():
                raise ValueError("text (or request_json) must not be empty")
            for name, value in (("text", request.text), ("request_json", request.request_json)):
                if len(value) > MAX_TEXT_CHARS:
                    raise ValueError(f"{name} is {len(value)} characters; the limit is {MAX_TEXT_CHARS}")
            found = await self._backend.cache_explain(request.tenant, request.model, request.text, request.category,
                                                      request.api, request.request_json)
            return convert.cache_explain_response(found)

        return await self._call(context, "CacheExplain", run)

    # -------------------------------------------------------------- config
    async def GetConfig(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def run() -> Any:
            text, version, loaded_at = await self._backend.get_config()
            return pb.GetConfigResponse(
                config=text,
                format=convert.config_format(text),
                version=version,
                loaded_at_unix=convert.unix_seconds(loaded_at),
            )

        return await self._call(context, "GetConfig", run)

    async def ReloadConfig(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def run() -> Any:
            ok, error, version = await self._backend.reload_config()
            log.info("config_reload", ok=bool(ok), version=version, error=error or None)
            return pb.ReloadConfigResponse(ok=bool(ok), error=error or "", version=version or "")

        return await self._call(context, "ReloadConfig", run)


def add_admin_service(
    server: grpc.aio.Server,
    backend: AdminBackend,
    token: TokenSource,
) -> RouterAdminServicer:
    """Register RouterAdmin on `server` (before `server.start()`).

    With a token, every call must carry `authorization: Bearer <token>` metadata, else it
    fails UNAUTHENTICATED. Pass a token whenever the server listens beyond loopback; a callable
    is asked at every call (an empty answer is refused like a wrong token: never no auth).
    """
    servicer = RouterAdminServicer(backend, token)
    pb_grpc.add_RouterAdminServicer_to_server(servicer, server)
    return servicer


ADMIN_TOKEN_ENV = "SEMROUTER_ADMIN_TOKEN"


def admin_token_for(listen: str, configured: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The token to pass to `add_admin_service` for an admin API listening on `listen` (server.admin_listen).

    `configured` (server.admin_token) wins, then SEMROUTER_ADMIN_TOKEN in `env` (pass
    os.environ; keeps the secret out of config files, as deploy/docker-compose.yml does).
    Without either: None on loopback (no auth), an error otherwise, so a router reachable from
    the network never serves the admin API unauthenticated.
    """
    token = (configured or "").strip() or (env or {}).get(ADMIN_TOKEN_ENV, "").strip()
    if token:
        return token
    if is_loopback(listen):
        return None
    raise ValueError(
        f"server.admin_listen {listen!r} is not loopback: set server.admin_token or {ADMIN_TOKEN_ENV} to a "
        "secret token for the admin API (clients send 'authorization: Bearer <token>')"
    )


def is_loopback(listen: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost listen addresses (no token needed there)."""
    host = listen.rpartition(":")[0].strip("[]").lower()
    return host == "localhost" or host == "::1" or host.startswith("127.")


__all__ = [
    "ADMIN_TOKEN_ENV",
    "SERVICE_NAME",
    "AdminBackend",
    "AdminError",
    "RouterAdminServicer",
    "TokenSource",
    "add_admin_service",
    "admin_token_for",
    "bearer_ok",
    "is_loopback",
]
