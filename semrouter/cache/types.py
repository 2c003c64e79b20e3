"""Shapes shared by the cache modules: keys, hits, stored entries and the backend interface."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

Embedder = Callable[[Sequence[str]], Awaitable[np.ndarray]]
"""Texts -> float32 [N, dim], each row L2-normalised."""


class CacheBackendError(RuntimeError):
    """The backend failed (down, slow, refused); the cache fails open on it."""


class CacheSchemaError(RuntimeError):
    """An existing collection does not fit this configuration; nothing was changed or dropped."""


@dataclass(frozen=True, slots=True)
class Scope:
    """What must be equal for two requests to share an answer. Only [A-Za-z0-9._:@/-] characters."""

    tenant: str
    model: str
    context_hash: str  # sha256 of the conversation before the last user message
    params_hash: str  # sha256 of the parameters that change the answer


@dataclass(frozen=True, slots=True)
class CacheKey:
    """Where a request's answer is looked up and stored (see `keys.py` for the rules)."""

    tenant: str
    model: str
    context_hash: str
    params_hash: str
    prompt: str  # the last user message, verbatim
    prompt_hash: str  # sha256 of the normalised prompt (case, whitespace)

    @property
    def scope(self) -> Scope:
        return Scope(self.tenant, self.model, self.context_hash, self.params_hash)


@dataclass(frozen=True, slots=True)
class CacheHit:
    entry_id: str
    body: bytes  # a chat.completion JSON object
    similarity: float
    exact: bool


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored answer. Times are unix milliseconds."""

    id: str
    tenant: str
    model: str
    context_hash: str
    params_hash: str
    prompt_hash: str
    prompt: str
    category: str
    body: bytes
    created: int
    expires: int
    hit_count: int = 0
    last_hit: int = 0

    @property
    def scope(self) -> Scope:
        return Scope(self.tenant, self.model, self.context_hash, self.params_hash)

    def summary(self, with_body: bool = False) -> dict[str, Any]:
        """The entry as the admin API's `CacheEntry` message has it (times in unix seconds, 0 = never);
        `body` (the stored answer, UTF-8) only with `with_body`. CLI and admin API print this shape."""
        d: dict[str, Any] = {
            "id": self.id, "tenant": self.tenant, "model": self.model, "prompt": self.prompt,
            "created_at_unix": self.created / 1000, "expires_at_unix": self.expires / 1000,
            "hits": self.hit_count, "response_bytes": len(self.body), "category": self.category,
            "last_hit_unix": self.last_hit / 1000, "context_hash": self.context_hash,
            "params_hash": self.params_hash, "prompt_hash": self.prompt_hash,
        }
        if with_body:
            d["body"] = self.body.decode("utf-8", "replace")
        return d


class CacheBackend(Protocol):
    """Vector + scalar storage of entries. Implementations never block the event loop."""

    name: str

    async def open(self) -> None:
        """Connect; create the collection if missing; raise CacheSchemaError if it does not fit."""

    async def insert(self, entry: Entry, vector: np.ndarray) -> None: ...

    async def find_exact(self, scope: Scope, prompt_hash: str, now: int) -> Entry | None:
        """An unexpired entry of this scope with this normalised prompt hash."""

    async def search(self, scope: Scope, vector: np.ndarray, limit: int, now: int) -> list[tuple[Entry, float]]:
        """Nearest unexpired entries of this scope by inner product, best first."""

    async def record_hits(self, hits: dict[str, int]) -> None:
        """Entry id -> time of its last hit (for LRU); best effort."""

    async def count(self) -> int: ...

    async def get(self, entry_id: str) -> Entry | None: ...

    async def list(self, tenant: str | None, model: str | None, limit: int) -> list[Entry]: ...

    async def delete(self, ids: Sequence[str] | None, tenant: str | None, model: str | None) -> int: ...

    async def delete_expired(self, now: int) -> int: ...

    async def evict(self, max_entries: int, policy: str) -> int:
        """Delete the oldest (fifo: by created; lru: by last hit) entries beyond max_entries."""

    async def clear(self) -> int: ...

    async def reconnect(self) -> None: ...

    async def close(self) -> None: ...
