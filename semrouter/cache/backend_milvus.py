"""Milvus backend (pymilvus `MilvusClient`): Milvus Lite embedded, or a Milvus server/cluster.

Collection schema (created if missing, never dropped; a mismatch raises `CacheSchemaError`):

    id            VARCHAR(64)  primary key (uuid4 hex)
    vector        FLOAT_VECTOR(dim), index from config (HNSW M=16 efConstruction=200), metric IP
    tenant        VARCHAR(160) partition key (Milvus >= 2.2.9 and Milvus Lite hash it into partitions)
    model         VARCHAR(256)
    context_hash  VARCHAR(64)  sha256 hex of the earlier turns
    params_hash   VARCHAR(64)  sha256 hex of the answer-changing parameters
    prompt_hash   VARCHAR(64)  sha256 hex of the normalised last user message (exact-match lookup)
    prompt        VARCHAR(16384) the last user message (used by verification, shown by the CLI)
    category      VARCHAR(128)
    body          VARCHAR(65535) "j:" + chat.completion JSON, or "z:" + base64(zlib(JSON)) when larger
    created, expires, last_hit, hit_count  INT64 (unix ms; last_hit/hit_count for LRU)

Every search and exact query filters on tenant, model, context_hash, params_hash and
`expires > now` inside Milvus, so a neighbour from another scope is never returned. Every
pymilvus call is blocking; all run on this backend's own thread pool (`client_threads`) over one
dedicated gRPC connection, with a gRPC deadline.

Milvus Lite (a local `*.db` path) runs in the router process as a pure-Python gRPC server on a
loopback port: flat vectors until a segment is sealed, then the configured faiss index per
segment (HNSW, HNSW_SQ, IVF_FLAT, IVF_SQ8; FLAT/BRUTE_FORCE without faiss; AUTOINDEX = HNSW).
It does not enforce TTL; the router filters and purges expired entries itself.
"""

from __future__ import annotations

import asyncio
import base64
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import numpy as np
import structlog

from semrouter.cache.config import MilvusConfig
from semrouter.cache.types import CacheBackendError, CacheSchemaError, Entry, Scope

log = structlog.get_logger("semrouter.cache.milvus")
T = TypeVar("T")

_PROMPT_BYTES = 16384
_VARCHARS = {"id": 64, "tenant": 160, "model": 256, "context_hash": 64, "params_hash": 64, "prompt_hash": 64,
             "prompt": _PROMPT_BYTES, "category": 128, "body": 65535}
_INTS = ("created", "expires", "last_hit", "hit_count")
_SCALARS = [f for f in _VARCHARS if f != "body"] + list(_INTS)
_ALL = [*_VARCHARS, *_INTS]
_FIELDS = {"id", "vector", *_VARCHARS, *_INTS}
_SCAN_BATCH = 1000


class BodyTooLarge(ValueError):
    pass


def encode_body(body: bytes, limit: int) -> str:
    text = body.decode("utf-8")
    if len(body) + 2 <= limit:
        return "j:" + text
    packed = "z:" + base64.b64encode(zlib.compress(body, 6)).decode("ascii")
    if len(packed) > limit:
        raise BodyTooLarge(f"answer is {len(body)} bytes ({len(packed)} compressed); the limit is {limit}")
    return packed


def decode_body(stored: str) -> bytes:
    if stored.startswith("z:"):
        return zlib.decompress(base64.b64decode(stored[2:]))
    return stored.removeprefix("j:").encode("utf-8")


def _clip(text: str, max_bytes: int) -> str:
    raw = text.encode("utf-8")
    return text if len(raw) <= max_bytes else raw[:max_bytes].decode("utf-8", "ignore")


def _lit(value: str) -> str:
    if '"' in value or "\\" in value:
        raise ValueError(f"unsafe filter value {value!r}")
    return f'"{value}"'


def scope_filter(scope: Scope) -> str:
    return (f"tenant == {_lit(scope.tenant)} and model == {_lit(scope.model)} and "
            f"context_hash == {_lit(scope.context_hash)} and params_hash == {_lit(scope.params_hash)}")


def _row_to_entry(row: dict[str, Any]) -> Entry:
    return Entry(
        id=row["id"], tenant=row["tenant"], model=row["model"], context_hash=row["context_hash"],
        params_hash=row["params_hash"], prompt_hash=row["prompt_hash"], prompt=row["prompt"],
        category=row["category"], body=decode_body(row["body"]), created=int(row["created"]),
        expires=int(row["expires"]), last_hit=int(row["last_hit"]), hit_count=int(row["hit_count"]),
    )


class MilvusBackend:
    name = "milvus"

    def __init__(self, cfg: MilvusConfig, dim: int, search_timeout_s: float) -> None:
        self._cfg = cfg
        self._dim = dim
        self._search_timeout = search_timeout_s
        self._timeout = cfg.call_timeout_seconds
        self._col = cfg.collection
        self._pool = ThreadPoolExecutor(max_workers=cfg.client_threads, thread_name_prefix="milvus-cache")
        self._client: Any = None

    # -- plumbing -----------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        client = self._client
        if client is None:
            raise CacheBackendError("not connected to Milvus")
        loop = asyncio.get_running_loop()

        def run() -> T:
            return fn(client, *args, **kwargs)

        try:
            return await loop.run_in_executor(self._pool, run)
        except (CacheSchemaError, BodyTooLarge):
            raise
        except Exception as e:  # pymilvus raises many types (MilvusException, grpc errors, ...)
            raise CacheBackendError(f"{type(e).__name__}: {e}") from e

    def _connect(self) -> Any:
        from pymilvus import MilvusClient  # imported lazily: the memory backend does not need it

        c = self._cfg
        # dedicated: pymilvus (>= 2.6) otherwise shares one gRPC channel per address process-wide and keeps it
        # when a client closes, so a reconnect would reuse a channel stuck in gRPC's own reconnect back-off
        # (seconds after the server is back); a dedicated one is closed with its client and made afresh.
        kwargs: dict[str, Any] = {"uri": c.uri, "timeout": self._timeout, "dedicated": True}
        if c.is_local:
            Path(c.uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs.update(user=c.user, password=c.password, db_name=c.db_name, token=c.token)
            tls = {"secure": c.secure or c.uri.startswith("https://"), "server_pem_path": c.server_pem_path,
                   "server_name": c.server_name, "client_pem_path": c.client_pem_path,
                   "client_key_path": c.client_key_path, "ca_pem_path": c.ca_pem_path}
            kwargs.update({k: v for k, v in tls.items() if v})
        return MilvusClient(**kwargs)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._client = await loop.run_in_executor(self._pool, self._connect)
        except Exception as e:
            raise CacheBackendError(f"cannot connect to Milvus at {self._cfg.uri}: {type(e).__name__}: {e}") from e
        await self._call(self._ensure_collection)

    async def probe(self) -> bool:
        """Whether the server accepts a connection (a TCP or unix-socket connect, no RPC): the cheap check
        that gates a full reconnect while the cache is marked down. Embedded Milvus Lite: always True."""
        c = self._cfg
        if c.is_local:
            return True
        try:
            if c.uri.startswith("unix:"):
                _, writer = await asyncio.open_unix_connection(c.uri.removeprefix("unix:").removeprefix("//"))
            else:
                u = urlsplit(c.uri)
                port = u.port or (443 if u.scheme == "https" else 19530)
                _, writer = await asyncio.open_connection(u.hostname or "localhost", port)
        except OSError:
            return False
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return True

    async def reconnect(self) -> None:
        old, self._client = self._client, None
        if old is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, _quiet_close, old)
        await self.open()

    async def close(self) -> None:
        old, self._client = self._client, None
        if old is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, _quiet_close, old)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _ensure_collection(self, client: Any) -> None:
        from pymilvus import DataType, MilvusClient

        if client.has_collection(self._col, timeout=self._timeout):
            self._check_schema(client.describe_collection(self._col, timeout=self._timeout))
        else:
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                                description="semrouter semantic cache")
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=_VARCHARS["id"])
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self._dim)
            for name, size in _VARCHARS.items():
                if name != "id":
                    schema.add_field(name, DataType.VARCHAR, max_length=size, is_partition_key=name == "tenant")
            for name in _INTS:
                schema.add_field(name, DataType.INT64)
            # Milvus Lite: the index is made below without pymilvus' wait, which asks the server for a timestamp
            # (AllocTimestamp) that Lite does not implement: its in-process gRPC server printed a traceback
            client.create_collection(self._col, schema=schema,
                                     index_params=None if self._cfg.is_local else self._index_params(client),
                                     consistency_level="Session", timeout=self._timeout)
            log.info("cache collection created", collection=self._col, uri=self._cfg.uri if self._cfg.is_local
                     else "(server)", index=self._cfg.index_type, dim=self._dim)
        if not client.list_indexes(self._col, field_name="vector"):
            # Lite builds the index in the call; `sync` would only poll for it (through AllocTimestamp)
            client.create_index(self._col, self._index_params(client), timeout=self._timeout,
                                sync=not self._cfg.is_local)
        client.load_collection(self._col, timeout=self._timeout)

    def _index_params(self, client: Any) -> Any:
        ip = client.prepare_index_params()
        ip.add_index(field_name="vector", index_type=self._cfg.index_type, metric_type="IP",
                     params=dict(self._cfg.index_params))
        return ip

    def _check_schema(self, desc: dict[str, Any]) -> None:
        fields = {f["name"]: f for f in desc.get("fields", [])}
        problems = []
        missing = sorted(_FIELDS - set(fields))
        if missing:
            problems.append(f"missing fields {missing}")
        vec = fields.get("vector")
        if vec is not None:
            dim = int((vec.get("params") or {}).get("dim", -1))
            if dim != self._dim:
                problems.append(f"vector dimension is {dim}, the configured embedder gives {self._dim}")
        if problems:
            raise CacheSchemaError(
                f"Milvus collection {self._col!r} at {self._cfg.uri} does not fit the semantic cache: "
                f"{'; '.join(problems)}. Nothing was changed. Fix: set cache.milvus.collection to a new name "
                f"(a new collection is created), or set cache.dimension to match, or drop the old collection "
                f"yourself once its data is no longer needed."
            )

    # -- entries ------------------------------------------------------------------------------

    async def insert(self, entry: Entry, vector: np.ndarray) -> None:
        row = self._row(entry, vector)
        await self._call(lambda c: c.insert(self._col, [row], timeout=self._timeout))

    def _row(self, e: Entry, vector: np.ndarray) -> dict[str, Any]:
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != self._dim:
            raise ValueError(f"vector has dimension {v.shape[0]}, the cache expects {self._dim}")
        return {
            "id": e.id, "vector": v.tolist(), "tenant": e.tenant, "model": e.model, "context_hash": e.context_hash,
            "params_hash": e.params_hash, "prompt_hash": e.prompt_hash, "prompt": _clip(e.prompt, _PROMPT_BYTES),
            "category": _clip(e.category, 128), "body": encode_body(e.body, self._cfg.max_body_bytes),
            "created": e.created, "expires": e.expires, "last_hit": e.last_hit, "hit_count": e.hit_count,
        }

    async def find_exact(self, scope: Scope, prompt_hash: str, now: int) -> Entry | None:
        expr = f"{scope_filter(scope)} and prompt_hash == {_lit(prompt_hash)} and expires > {int(now)}"
        rows = await self._call(lambda c: c.query(self._col, filter=expr, output_fields=_ALL, limit=1,
                                                  timeout=self._search_timeout))
        return _row_to_entry(rows[0]) if rows else None

    async def search(self, scope: Scope, vector: np.ndarray, limit: int, now: int) -> list[tuple[Entry, float]]:
        expr = f"{scope_filter(scope)} and expires > {int(now)}"
        q = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        params = {"metric_type": "IP", "params": dict(self._cfg.search_params)}
        res = await self._call(lambda c: c.search(self._col, data=[q], filter=expr, limit=limit,
                                                  output_fields=_ALL, search_params=params,
                                                  timeout=self._search_timeout))
        out = []
        for hit in res[0] if res else ():
            ent = hit.get("entity") or hit
            out.append((_row_to_entry({**ent, "id": hit.get("id", ent.get("id"))}), float(hit["distance"])))
        return out

    async def record_hits(self, hits: dict[str, int]) -> None:
        if not hits:
            return
        ids = list(hits)

        def run(c: Any) -> None:
            rows = c.query(self._col, ids=ids, output_fields=["vector", *_ALL], timeout=self._timeout)
            for r in rows:
                r["hit_count"] = int(r["hit_count"]) + 1
                r["last_hit"] = max(int(r["last_hit"]), hits.get(r["id"], 0))
                r["vector"] = [float(x) for x in r["vector"]]
            if rows:
                c.upsert(self._col, rows, timeout=self._timeout)

        await self._call(run)

    async def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of these entries (the learned verifier compares them with the query)."""
        if not ids:
            return {}
        rows = await self._call(lambda c: c.query(self._col, ids=list(ids), output_fields=["vector"],
                                                  timeout=self._timeout))
        return {r["id"]: np.asarray(r["vector"], dtype=np.float32) for r in rows}

    async def count(self) -> int:
        rows = await self._call(lambda c: c.query(self._col, filter="", output_fields=["count(*)"],
                                                  timeout=self._timeout))
        return int(rows[0]["count(*)"]) if rows else 0

    async def get(self, entry_id: str) -> Entry | None:
        rows = await self._call(lambda c: c.query(self._col, ids=[entry_id], output_fields=_ALL,
                                                  timeout=self._timeout))
        return _row_to_entry(rows[0]) if rows else None

    async def list(self, tenant: str | None, model: str | None, limit: int) -> list[Entry]:
        expr = self._admin_filter(tenant, model) or 'id != ""'
        rows = await self._call(lambda c: c.query(self._col, filter=expr, output_fields=_ALL, limit=limit,
                                                  timeout=self._timeout))
        return [_row_to_entry(r) for r in rows]

    @staticmethod
    def _admin_filter(tenant: str | None, model: str | None) -> str:
        parts = []
        if tenant is not None:
            parts.append(f"tenant == {_lit(tenant)}")
        if model is not None:
            parts.append(f"model == {_lit(model)}")
        return " and ".join(parts)

    def _ids_where(self, client: Any, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        it = client.query_iterator(self._col, batch_size=_SCAN_BATCH, filter=expr, output_fields=fields,
                                   timeout=self._timeout)
        try:
            while batch := it.next():
                out.extend(batch)
        finally:
            it.close()
        return out

    def _delete_ids(self, client: Any, ids: Sequence[str]) -> int:
        for i in range(0, len(ids), _SCAN_BATCH):
            client.delete(self._col, ids=list(ids[i:i + _SCAN_BATCH]), timeout=self._timeout)
        return len(ids)

    async def _delete_where(self, expr: str) -> int:
        def run(c: Any) -> int:
            return self._delete_ids(c, [r["id"] for r in self._ids_where(c, expr, ["id"])])

        return await self._call(run)

    async def delete(self, ids: Sequence[str] | None, tenant: str | None, model: str | None) -> int:
        parts = [self._admin_filter(tenant, model)] if tenant is not None or model is not None else []
        if ids is not None:
            if not ids:
                return 0
            parts.append("id in [" + ", ".join(_lit(i) for i in ids) + "]")
        return await self._delete_where(" and ".join(parts) or 'id != ""')

    async def delete_ids(self, ids: Sequence[str]) -> None:
        """Delete these primary keys (known to exist: the mirror's evictions) without querying for them first."""
        if ids:
            await self._call(lambda c: self._delete_ids(c, list(ids)))

    async def delete_expired(self, now: int) -> int:
        return await self._delete_where(f"expires <= {int(now)}")

    async def scan(self) -> list[tuple[Entry, np.ndarray]]:
        """Every entry with its vector (to load an in-process mirror at start-up)."""
        rows = await self._call(lambda c: self._ids_where(c, 'id != ""', ["vector", *_ALL]))
        return [(_row_to_entry(r), np.asarray(r["vector"], dtype=np.float32)) for r in rows]

    async def evict(self, max_entries: int, policy: str) -> int:
        def run(c: Any) -> int:
            rows = self._ids_where(c, 'id != ""', ["id", "created", "last_hit"])
            extra = len(rows) - max_entries
            if extra <= 0:
                return 0
            if policy == "lru":
                rows.sort(key=lambda r: (max(int(r["last_hit"]), int(r["created"])), int(r["created"])))
            else:
                rows.sort(key=lambda r: int(r["created"]))
            return self._delete_ids(c, [r["id"] for r in rows[:extra]])

        return await self._call(run)

    async def clear(self) -> int:
        return await self._delete_where('id != ""')


def _quiet_close(client: Any) -> None:
    try:
        client.close()
    except Exception:  # closing a dead connection may fail; nothing to do
        pass
