"""Which requests may use the cache, and the scope their answers are shared in.

Rules (a request gets no key, i.e. neither lookup nor store, when any of these holds):

* `cache-control` contains `no-store` or `no-cache`, or `x-semrouter-cache: bypass`;
* the last message is not a user message with text, or that text is longer than `max_prompt_chars`;
* `n` > 1, `logprobs` or `top_logprobs` is set, or (Responses) `include` asks for extra output data such as
  logprobs or encrypted reasoning (a cached answer cannot honour them: the stored answer keeps neither);
* `temperature` (default 1.0 as in the OpenAI API) is above `max_temperature`;
* tools/functions are offered and `skip_tools` is on;
* there is no tenant and `allow_anonymous` is off.

Scope (all must be equal for an answer to be shared; they are filters inside the search):

* tenant: the label semrouter/request/tenant.py resolves (by default a keyed hash of the credential
  header; a client-sent tenant header counts only with `tenant_from: trusted_header`). A request with
  no tenant gets `anonymous` (every unidentified client shares it), or no key with `allow_anonymous: false`.
* model: the `model` the client asked for (an `auto` request is cached under `auto`).
* context_hash: sha256 of the canonical JSON of every message before the last one (system and
  developer prompts, earlier turns, tool calls, every content part) and of everything in the last
  message except its text: its non-text parts (`image_url`, `input_audio`, `file`, ... by URL or
  inline data, i.e. by content) and any other field (`name`). The same question in another
  conversation, or about another image, misses.
* policy: the fingerprint of the answer policies (jailbreak guard, PII detection, what they read, the requested
  model's pii_policy; decision/needs.policy_fingerprints), inside params_hash: an answer stored under other
  policies is not served (a stricter guard after a reload also covers the exact stage, which answers before any
  signal runs).
* space: a prompt the language signal detects as one of `multilingual.languages` is embedded by the multilingual
  encoder and kept in that language's space (`in_space`, inside params_hash): a Spanish prompt is compared with,
  and served, Spanish prompts' answers only (multilingual.py).
* params_hash: sha256 of the API name and the canonical JSON of every body field except those listed
  as answer-neutral in `ANSWER_NEUTRAL[api]` (each with its reason). `SCOPE_FIELDS[api]` lists the
  known fields that separate the scope (tools, tool_choice, response_format, max_tokens, stop, seed,
  penalties, ...); a field in neither list (a vendor extension) separates the scope too.

The prompt hash (exact stage, before any embedding) is sha256 of the last user message with only
what cannot change the answer normalised: Unicode NFC, line endings, surrounding whitespace and, in
prose without code or quotes (verbatim.py), runs of spaces inside a line. Case is kept ("May" the
month, "may" the verb); code and quoted text are compared verbatim, indentation included.

Every API's request is keyed by `make_key`, which passes the API's table name (`KEY_API[req.api]`: chat
completions, Responses, Messages, each with its own `SCOPE_FIELDS` / `ANSWER_NEUTRAL` tables) to
`key_from_parts`; the API name is part of the scope, so answers of different shapes never mix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from semrouter.cache.config import CacheConfig
from semrouter.cache.types import CacheKey
from semrouter.cache.verbatim import has_verbatim
from semrouter.headers import CACHE_BYPASS, CACHE_CONTROL
from semrouter.request.parse import ChatRequest, content_text
from semrouter.request.tenant import ANONYMOUS, Tenancy  # noqa: F401 (ANONYMOUS re-exported)

_RESOLVE: Any = object()  # the default `tenant`: resolve it from the headers
CHAT_COMPLETIONS = "chat_completions"
_SAFE = re.compile(r"^[A-Za-z0-9._:@/-]{1,128}$")
_HSPACE = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")
_TRAILING = re.compile(r"[ \t]+\n")
_BLANK_LINES = re.compile(r"\n{3,}")

# Request fields that do not change the answer's content, with the reason (docs/CACHE.md repeats them).
ANSWER_NEUTRAL: dict[str, dict[str, str]] = {
    CHAT_COMPLETIONS: {
        "messages": "is the key itself: the last user text is the prompt, everything else is in context_hash",
        "model": "is its own scope field (model)",
        "stream": "a stored answer is replayed as JSON or as SSE chunks, whichever is asked",
        "stream_options": "only asks for a usage chunk in a stream; the replay adds it when asked",
        "temperature": "answers at or below cache.max_temperature are treated as interchangeable samples; "
                       "above it nothing is cached",
        "top_p": "a sampling knob like temperature: which sample, not what is asked",
        "user": "an end-user id for the provider's abuse monitoring; the tenant comes from headers",
        "safety_identifier": "the successor of `user`: abuse monitoring only",
        "metadata": "tags stored with the completion on the provider side",
        "store": "whether the provider keeps the completion",
        "service_tier": "latency/price class of the provider, not the content",
        "prompt_cache_key": "a hint for the provider's own prefix cache",
        "n": "requests with n > 1 are not cached at all",
        "logprobs": "requests asking for logprobs are not cached at all",
        "top_logprobs": "requests asking for logprobs are not cached at all",
    },
}
# Known fields that change the answer (they separate the scope); unknown fields do too.
SCOPE_FIELDS: dict[str, dict[str, str]] = {
    CHAT_COMPLETIONS: {
        "tools": "the functions the model may call", "tool_choice": "whether/which tool is called",
        "parallel_tool_calls": "how many tool calls one answer may hold",
        "functions": "legacy tools", "function_call": "legacy tool_choice",
        "response_format": "JSON mode / a JSON schema the answer must follow",
        "max_tokens": "length cap", "max_completion_tokens": "length cap", "stop": "where the answer ends",
        "seed": "asks for a specific reproducible sample",
        "frequency_penalty": "changes the wording", "presence_penalty": "changes the wording",
        "logit_bias": "bans or favours tokens", "reasoning_effort": "how hard a reasoning model thinks",
        "verbosity": "answer length", "modalities": "text and/or audio output", "audio": "voice and format",
        "prediction": "predicted output the answer is edited from",
        "web_search_options": "search context changes the facts used",
    },
}
RESPONSES, MESSAGES = "responses", "messages"
KEY_API = {"chat": CHAT_COMPLETIONS, "responses": RESPONSES, "messages": MESSAGES}  # ChatRequest.api -> table
_SAMPLING = {"temperature": ANSWER_NEUTRAL[CHAT_COMPLETIONS]["temperature"],
             "top_p": ANSWER_NEUTRAL[CHAT_COMPLETIONS]["top_p"]}
ANSWER_NEUTRAL[RESPONSES] = {
    "messages": "the converted `input` and `instructions`: the prompt and context_hash",
    "model": "is its own scope field (model)", "stream": "a stored answer is replayed as JSON or as events",
    "stream_options": "only shapes the event stream", **_SAMPLING,
    "user": "abuse monitoring only", "safety_identifier": "abuse monitoring only",
    "metadata": "tags stored with the response on the provider side",
    "store": "whether the provider keeps the response (a replay keeps the stored id)",
    "service_tier": "latency/price class", "prompt_cache_key": "a hint for the provider's prefix cache",
    "top_logprobs": "requests asking for logprobs are not cached at all",
}
SCOPE_FIELDS[RESPONSES] = {
    "previous_response_id": "the upstream conversation this turn continues (the router cannot see it)",
    "conversation": "an upstream conversation object", "reasoning": "effort and summaries",
    "text": "output format and verbosity", "tools": "tools the model may call", "tool_choice": "tool use",
    "parallel_tool_calls": "tool calls per answer", "max_output_tokens": "length cap",
    "max_tool_calls": "tool call cap", "truncation": "how context is cut",
    "include": "extra output data (logprobs, encrypted reasoning, ...): a non-empty one is not cached at all",
    "prompt": "a stored prompt template", "background": "asynchronous mode",
}
ANSWER_NEUTRAL[MESSAGES] = {
    "messages": "the converted `system` and `messages`: the prompt and context_hash",
    "model": "is its own scope field (model)", "stream": "a stored answer is replayed as JSON or as events",
    **_SAMPLING, "top_k": "a sampling knob like top_p", "metadata": "user_id for abuse monitoring",
    "service_tier": "latency/price class",
}
SCOPE_FIELDS[MESSAGES] = {
    "max_tokens": "length cap", "stop_sequences": "where the answer ends", "thinking": "the reasoning budget",
    "tools": "tools the model may call", "tool_choice": "tool use", "mcp_servers": "remote tools",
    "container": "code execution state", "context_management": "what of the conversation the model keeps",
}
_NOT_CACHEABLE = ("logprobs", "top_logprobs")
_NOT_CACHEABLE_IN = {RESPONSES: ("include",)}  # per API, beside those of every API


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
    """What the exact stage compares: NFC, \\n line endings, no surrounding whitespace; in prose (no
    code or quoted text, see verbatim.py) also no trailing spaces, runs of spaces as one and at most one
    blank line. Case, punctuation and code are kept as written."""
    t = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n").strip()
    if has_verbatim(t):
        return t
    t = _HSPACE.sub(" ", t)
    t = _TRAILING.sub("\n", t)
    return _BLANK_LINES.sub("\n\n", t)


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


def answer_params(body: Mapping[str, Any], api: str = CHAT_COMPLETIONS) -> dict[str, Any]:
    """The body fields that separate the scope: all but `ANSWER_NEUTRAL[api]` (None values dropped)."""
    neutral = ANSWER_NEUTRAL[api]
    return {k: v for k, v in body.items() if k not in neutral and v is not None}


def key_from_parts(cfg: CacheConfig, headers: Mapping[str, str], *, api: str, model: str, prompt: str,
                   context: Any, body: Mapping[str, Any], tenant: str | None = _RESOLVE,
                   policy: str = "") -> CacheKey | None:
    """The cache key of any API's request, or None when it must not use the cache.

    `prompt`: the text the semantic stage compares (the last user turn's text); `context`: JSON-able
    value of everything else in the conversation that changes the answer (earlier turns, system
    prompt, the last turn's non-text parts); `body`: the request body (its fields are filtered by
    `ANSWER_NEUTRAL[api]`). Applies the opt-outs of the module docstring that do not depend on the API
    shape (bypass headers, prompt size, n/logprobs, temperature, tools, tenant). `tenant`: the resolved
    tenant label, None for none (default: resolved from `headers` by `tenant_of`). `policy`: the fingerprint of
    the policies that decide whether a request is answered (decision/needs.policy_fingerprints; part of the scope)."""
    if bypass_requested(headers) or not prompt.strip() or len(prompt) > cfg.max_prompt_chars:
        return None
    n = body.get("n")
    if (isinstance(n, int) and n > 1) or any(body.get(k) for k in (*_NOT_CACHEABLE, *_NOT_CACHEABLE_IN.get(api, ()))):
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
    return CacheKey(
        tenant=tenant,
        model=safe_label(model),
        context_hash=sha256(canonical_json(context)),
        params_hash=sha256(canonical_json({"api": api, "params": answer_params(body, api),
                                           **({"policy": policy} if policy else {})})),
        prompt=prompt,
        prompt_hash=prompt_hash(prompt),
    )


def make_key(cfg: CacheConfig, req: ChatRequest, headers: Mapping[str, str],
             tenant: str | None = _RESOLVE, policy: str = "") -> CacheKey | None:
    """A request's cache key, or None when it must not use the cache (module docstring). Responses and Messages
    requests arrive converted to chat messages (request/apis.py); their own fields are scoped by their tables."""
    if not req.messages:
        return None
    last = req.messages[-1]
    if last.get("role") != "user":
        return None
    history = [_message_identity(m) for m in req.messages[:-1]]
    return key_from_parts(cfg, headers, api=KEY_API[req.api], model=req.model,
                          prompt=content_text(last.get("content")),
                          context={"history": history, "last": _non_text(last)}, body=req.body, tenant=tenant,
                          policy=policy)


def in_space(key: CacheKey, space: str) -> CacheKey:
    """`key` in an embedding space of its own (cache.multilingual: "e5:<language>"): params_hash becomes
    sha256(space + params_hash), so entries of two spaces never share a scope (neither the exact stage nor the
    vector search compares them: their vectors come from different encoders). "" = the English space, unchanged."""
    if not space:
        return key
    return dataclasses.replace(key, params_hash=sha256(f"space={space}|{key.params_hash}"))


def _message_identity(m: Mapping[str, Any]) -> dict[str, Any]:
    # Everything in an earlier message matters (name, tool calls, tool_call_id, image parts).
    return {k: v for k, v in m.items() if v is not None}


def _non_text(m: Mapping[str, Any]) -> dict[str, Any]:
    """The last message without its text: non-text content parts (by URL or inline data) and other fields.
    Text parts are summarised by their count, so `[text, image]` and `[image, text]` still differ."""
    out = {k: v for k, v in m.items() if k not in ("content", "role") and v is not None}
    content = m.get("content")
    if isinstance(content, list) and any(not (isinstance(p, dict) and p.get("type") == "text") for p in content):
        out["parts"] = [p if not (isinstance(p, dict) and p.get("type") == "text") else "text" for p in content]
    return out
