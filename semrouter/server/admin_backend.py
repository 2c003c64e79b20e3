"""The router's side of the admin API: classification, cache management, config."""

from __future__ import annotations

from typing import Any, Protocol

import grpc
import yaml

from semrouter.admin.service import AdminError
from semrouter.decision.explain import explain
from semrouter.request.apis import explain_request
from semrouter.runtime import RuntimeHolder


class LiveRouter(Protocol):
    """What the admin API needs of the running router (`semrouter.server.app.RouterServer`): the live runtime and
    a reload that answers (applied, version, message)."""

    holder: RuntimeHolder

    async def reload(self, *, force: bool = False) -> tuple[bool, str, str]: ...


_SECRET_KEYS = frozenset({"admin_token", "token", "password"})


def _mask(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: ("***" if k in _SECRET_KEYS and v else _mask(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_mask(x) for x in node]
    return node


class RouterAdminBackend:
    """Implements `semrouter.admin.service.AdminBackend` on the live runtime of a running router."""

    def __init__(self, server: LiveRouter) -> None:
        self._server = server

    def _cache(self) -> Any:
        cache = self._server.holder.current.cache
        if cache is None:
            raise AdminError(grpc.StatusCode.FAILED_PRECONDITION, "the semantic cache is disabled (cache.enabled)")
        return cache

    async def classify(self, text: str) -> dict[str, Any]:
        if not text.strip():
            raise ValueError("text is empty")
        result = await explain(self._server.holder.current, text)
        return {**result, "jailbreak_score": result["jailbreak"]}

    async def cache_stats(self) -> dict[str, Any]:
        cache = self._server.holder.current.cache
        if cache is None:
            return {"enabled": False}
        return {"enabled": True, **await cache.stats()}

    def _key(self, tenant: str, model: str, text: str, api: str = "", request_json: str = "") -> Any:
        """The cache key of `text` as the only (user) message of a request from `tenant` for `model`, or of the
        whole `request_json` body of `api` (request/apis.explain_request)."""
        cache = self._cache()
        rt = self._server.holder.current  # one runtime: its config and its policies' fingerprints
        cfg = rt.config
        req = explain_request(text, model or cfg.routing.auto_model_names[0], api, request_json,
                              cfg.server.max_body_bytes)
        key = cache.key_for(req, {}, tenant=tenant or None,  # a label as `cache list` shows it
                            policy=rt.policy.for_request(cfg, req.model))
        if key is None:
            raise ValueError("this request would not use the cache (opt-out rules)")
        return key

    async def cache_lookup(self, tenant: str, model: str, text: str) -> dict[str, Any] | None:
        cache = self._cache()
        hit = await cache.lookup(self._key(tenant, model, text), None)
        if hit is None:
            return None
        entry = await cache.inspect(hit.entry_id)
        return {"similarity": hit.similarity, "entry_id": hit.entry_id, "entry": entry or {}}

    async def cache_inspect(self, entry_id: str) -> dict[str, Any]:
        found = await self._cache().inspect(entry_id)
        if found is None:
            raise LookupError(f"no entry {entry_id!r}")
        return dict(found)

    async def cache_explain(self, tenant: str, model: str, text: str, category: str, api: str = "",
                            request_json: str = "") -> dict[str, Any]:
        key = self._key(tenant, model, text, api, request_json)
        detector = self._server.holder.current.language  # as on the request path: a language may have its own space
        language = await detector.detect_async(key.prompt) if detector is not None else None
        return dict(await self._cache().explain(key, category or None, language))

    async def cache_delete(self, entry_id: str, tenant: str, model: str) -> int:
        if not (entry_id or tenant or model):
            raise ValueError("name an entry id, a tenant or a model (CacheClear deletes everything)")
        return int(await self._cache().delete(entry_id=entry_id or None, tenant=tenant or None, model=model or None))

    async def cache_clear(self) -> int:
        return int(await self._cache().clear())

    async def cache_list(self, tenant: str, model: str, limit: int) -> list[dict[str, Any]]:
        return list(await self._cache().list_entries(tenant=tenant or None, model=model or None,
                                                     limit=limit or 100))

    async def get_config(self) -> tuple[str, str, float]:
        """The active config (all defaults filled in) as YAML, secrets masked."""
        rt = self._server.holder.current
        text = yaml.safe_dump(_mask(rt.config.model_dump(mode="json")), sort_keys=False)
        return text, rt.version, rt.loaded_at

    async def reload_config(self) -> tuple[bool, str, str]:
        return await self._server.reload()
