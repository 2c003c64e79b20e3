"""Per-stream state: one ext_proc stream is one HTTP request. Nothing here is shared between streams."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from semrouter.decision.engine import Decision
from semrouter.request.parse import Api

Kind = Literal["chat", "models", "path", "passthrough"]  # path: routing.path_models, JSON body's model set


@dataclass(slots=True)
class Routed:
    """What the request phase decided, for the response phase."""

    decision: Decision
    endpoint: str
    stream: bool
    api: Api = "chat"  # the client's API: the answer is read (usage, cache store) in its shape
    cache_key: Any = None  # semrouter.cache CacheKey, or None when the cache is not used
    has_pii: bool = False
    embedding: Any = None  # the prompt's embedding, reused when the answer is stored
    language: str | None = None  # the prompt's detected language (the cache's language spaces), None = unknown
    tenant: str | None = None  # the request's tenant label (request/tenant.py): scopes the Responses ids it produces
    forwarded_at: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class ResponseCapture:
    """What the response phases saw of one answer: status, content type, the captured bytes (up to the capture
    limit: `overflow` then, and nothing kept), first-byte time (monotonic s) and whether it has been handed on."""

    status: int = 0
    content_type: str = ""
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    overflow: bool = False
    first_byte_at: float | None = None
    expected_size: int | None = None  # the answer's content-length, when it has one
    finished: bool = False  # the whole answer is in and has been handed on (metrics, cache)


@dataclass(slots=True)
class StreamState:
    """One ext_proc stream's state (one HTTP request, or one answer on an observer stream): what the request
    phases found (kind, API, path, headers, body parts), what they decided (`routed`) and the response capture."""

    kind: Kind = "passthrough"
    api: Api = "chat"  # for kind "chat": which API the client speaks (request/apis.py)
    path_model: str | None = None  # for kind "path": the model routing.path_models names
    method: str = ""
    path: str = ""
    request_id: str = "-"
    join: str = ""  # the router-minted join nonce of a forwarded request (headers.JOIN)
    headers: dict[str, str] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)
    body_parts: list[bytes] = field(default_factory=list)
    body_size: int = 0
    upload_client: str | None = None  # the client address holding an upload slot until the body is in (uploads.py)
    routed: Routed | None = None
    response: ResponseCapture = field(default_factory=ResponseCapture)
    result_headers: dict[str, str] = field(default_factory=dict)  # added to the client's response
    observer: bool = False  # an observability-mode stream: answers only, nothing is sent back
    decided: bool = False  # the request body was handled (its reply is the last one a decision stream needs)
    body_streamed: bool = False  # Envoy says (protocol_config) it streams the request body: more messages may come
    runtime: Any = None  # the Runtime the response phases use (the request's, for observer streams)
