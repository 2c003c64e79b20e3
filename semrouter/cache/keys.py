"""Which requests may use the cache, and the scope their answers are shared in.

Rules (a request gets no key, i.e. neither lookup nor store, when any of these holds):

* `cache-control` contains `no-store` or `no-cache`, or `x-semrouter-cache: bypass`;
* the last message is not a user message with text, or that text is longer than `max_prompt_chars`;
* `n` > 1 or `logprobs` is set (a cached answer cannot honour them);
* `temperature` (default 1.0 as in the OpenAI API) is above `max_temperature`;
* tools/functions are offered and `skip_tools` is on;
* there is no tenant and `allow_anonymous` is off.

Scope (all four must be equal for an answer to be shared; they are filters inside the search):

* tenant: the label semrouter/request/tenant.py resolves (by default a keyed hash of the credential
  header; a client-sent tenant header counts only with `tenant_from: trusted_header`). A request with
  no tenant gets `anonymous` (every unidentified client shares it), or no key with `allow_anonymous: false`.
* model: the `model` the client asked for (an `auto` request is cached under `auto`).
* context_hash: sha256 of the canonical JSON of every message before the last one (system prompt
  and earlier turns, including tool calls), so the same question in another conversation misses.
* params_hash: sha256 of the canonical JSON of every other body field that can change the answer:
  everything except `messages`, `model`, `stream`, `stream_options`, `temperature`, `top_p`,
  `user`, `metadata`, `store` and `service_tier`. So tools, tool_choice, response_format,
  max_tokens / max_completion_tokens, stop, seed, reasoning_effort, penalties, chat_template_kwargs
  and any unknown vendor field each separate the scope. Temperature and top_p do not: at or
  below `max_temperature` answers are treated as interchangeable samples; above it, nothing is
  cached. `stream` does not: a streamed answer is replayed as JSON and vice versa.

The prompt hash (exact match, before any embedding) is sha256 of the last user message, Unicode
NFKC-normalised, case-folded, with runs of whitespace collapsed and trailing whitespace removed.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from semrouter.cache.config import CacheConfig
from semrouter.cache.types import CacheKey
from semrouter.headers import CACHE_BYPASS, CACHE_CONTROL
from semrouter.request.parse import ChatRequest, content_text
from semrouter.request.tenant import ANONYMOUS, Tenancy  # noqa: F401 (ANONYMOUS re-exported)

_RESOLVE: Any = object()  # make_key's default: resolve the tenant from the headers
_SAFE = re.compile(r"^[A-Za-z0-9._:@/-]{1,128}$")
_WS = re.compile(r"\s+")
_NOT_PARAMS = frozenset(
    {"messages", "model", "stream", "stream_options", "temperature", "top_p", "user", "metadata", "store",
     "service_tier"}
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def safe_label(value: str) -> str:
    """A value usable verbatim in a Milvus filter literal; others become `h:` + a hash."""
    v = value.strip()
    if _SAFE.match(v):
        return v
    return "h:" + sha256(v)[:32]


def normalise_prompt(text: str) -> str:
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def prompt_hash(text: str) -> str:
    return sha256(normalise_prompt(text))


def bypass_requested(headers: Mapping[str, str]) -> bool:
    cc = {d.strip().split("=", 1)[0].lower() for d in headers.get(CACHE_CONTROL, "").split(",")}
    if "no-store" in cc or "no-cache" in cc:
        return True
    return headers.get(CACHE_BYPASS, "").strip().lower() == "bypass"


def tenancy(cfg: CacheConfig) -> Tenancy:
    """The tenant resolver `cfg` describes (reads the hash key from the environment)."""
    return Tenancy.create(cfg.tenant_from, cfg.credential_headers, cfg.tenant_header, cfg.allow_anonymous,
                          cfg.tenant_key_env)


def tenant_of(cfg: CacheConfig, headers: Mapping[str, str]) -> str | None:
    return tenancy(cfg).tenant(headers)


def answer_params(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in _NOT_PARAMS and v is not None}


def make_key(cfg: CacheConfig, req: ChatRequest, headers: Mapping[str, str],
             tenant: str | None = _RESOLVE) -> CacheKey | None:
    """The request's cache key, or None when it must not use the cache (see module docstring). `tenant`: the
    resolved tenant label, None for none (default: resolved from `headers` by `tenant_of`)."""
    if bypass_requested(headers) or not req.messages:
        return None
    last = req.messages[-1]
    if last.get("role") != "user":
        return None
    prompt = content_text(last.get("content"))
    if not prompt.strip() or len(prompt) > cfg.max_prompt_chars:
        return None
    body = req.body
    n = body.get("n")
    if (isinstance(n, int) and n > 1) or body.get("logprobs"):
        return None
    temperature = body.get("temperature")
    if temperature is None:
        temperature = 1.0
    if not isinstance(temperature, (int, float)) or temperature > cfg.max_temperature:
        return None
    if cfg.skip_tools and (body.get("tools") or body.get("functions")):
        return None
    if tenant is _RESOLVE:
        tenant = tenant_of(cfg, headers)
    if tenant is None:
        return None
    context = [_message_identity(m) for m in req.messages[:-1]]
    return CacheKey(
        tenant=tenant,
        model=safe_label(req.model),
        context_hash=sha256(canonical_json(context)),
        params_hash=sha256(canonical_json(answer_params(body))),
        prompt=prompt,
        prompt_hash=prompt_hash(prompt),
    )


def _message_identity(m: Mapping[str, Any]) -> dict[str, Any]:
    # Everything in an earlier message matters (name, tool calls, tool_call_id, image parts).
    return {k: v for k, v in m.items() if v is not None}
