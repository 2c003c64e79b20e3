"""Plain dicts (what `AdminBackend` returns) ⇄ admin API messages.

The backend speaks dicts so it needs no protobuf; these functions are the only place that
knows both shapes. Unknown keys are ignored and None means "not set".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from google.protobuf.message import Message

from semrouter.admin._proto import pb


def unix_seconds(value: Any) -> float:
    """float/int seconds, or a datetime, as Unix seconds; None → 0."""
    if value is None:
        return 0.0
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def pii_entity(e: Any) -> Any:
    """A dict or `semrouter.signals.types.PIIEntity` → PIIEntity message (the value is not sent)."""
    return pb.PIIEntity(
        type=str(_get(e, "type", "") or ""),
        start=int(_get(e, "start", 0) or 0),
        end=int(_get(e, "end", 0) or 0),
        score=float(_get(e, "score", 0.0) or 0.0),
    )


def classify_response(d: Mapping[str, Any], latency_ms: float) -> Any:
    msg = pb.ClassifyResponse(
        category=str(d.get("category") or ""),
        confidence=float(d.get("confidence") or 0.0),
        jailbreak_score=float(d.get("jailbreak_score") or 0.0),
        blocked=bool(d.get("blocked", False)),
        block_reason=str(d.get("block_reason") or ""),
        complexity=float(d.get("complexity") or 0.0),
        small_model_wrong=float(d.get("small_model_wrong") or 0.0),
        model=str(d.get("model") or ""),
        reason=str(d.get("reason") or ""),
        reasoning=bool(d.get("reasoning", False)),
        latency_ms=float(d["latency_ms"]) if d.get("latency_ms") is not None else latency_ms,
    )
    for k, v in (d.get("category_probs") or {}).items():
        msg.category_probs[str(k)] = float(v)
    for k, v in (d.get("timings_ms") or {}).items():
        msg.timings_ms[str(k)] = float(v)
    msg.pii.extend(pii_entity(e) for e in (d.get("pii") or ()))
    return msg


_STATS_KEYS = ("enabled", "backend", "entries", "hits", "misses", "hit_ratio", "similarity_threshold", "details")


def cache_stats_response(d: Mapping[str, Any]) -> Any:
    hits, misses = int(d.get("hits") or 0), int(d.get("misses") or 0)
    ratio = d.get("hit_ratio")
    if ratio is None:
        ratio = hits / (hits + misses) if hits + misses else 0.0
    msg = pb.CacheStatsResponse(
        enabled=bool(d.get("enabled", True)),
        backend=str(d.get("backend") or ""),
        entries=int(d.get("entries") or 0),
        hits=hits,
        misses=misses,
        hit_ratio=float(ratio),
        similarity_threshold=float(d.get("similarity_threshold") or 0.0),
    )
    details = dict(d.get("details") or {})
    details.update({k: v for k, v in d.items() if k not in _STATS_KEYS})
    for k, v in details.items():
        if v is not None:
            msg.details[str(k)] = v if isinstance(v, str) else json.dumps(v, default=str)
    return msg


def cache_entry(d: Mapping[str, Any]) -> Any:
    """`Entry.summary()` (or a dict with the older `created_at` / `hits` keys) → CacheEntry message."""
    return pb.CacheEntry(
        id=str(d.get("id") or d.get("entry_id") or ""),
        tenant=str(d.get("tenant") or ""),
        model=str(d.get("model") or ""),
        prompt=str(d.get("prompt") or d.get("text") or ""),
        created_at_unix=unix_seconds(d.get("created_at_unix", d.get("created_at"))),
        expires_at_unix=unix_seconds(d.get("expires_at_unix", d.get("expires_at"))),
        hits=int(d.get("hits") or 0),
        response_bytes=int(d.get("response_bytes") or 0),
        category=str(d.get("category") or ""),
        last_hit_unix=unix_seconds(d.get("last_hit_unix")),
        context_hash=str(d.get("context_hash") or ""),
        params_hash=str(d.get("params_hash") or ""),
        prompt_hash=str(d.get("prompt_hash") or ""),
        body=str(d.get("body") or ""),
    )


def cache_explain_response(d: Mapping[str, Any]) -> Any:
    """`SemanticCache.explain()`'s dict → CacheExplainResponse."""
    msg = pb.CacheExplainResponse(
        verdict=str(d.get("verdict") or ""), stage=str(d.get("stage") or ""), reason=str(d.get("reason") or ""),
        threshold=float(d.get("threshold") or 0.0), verifier=str(d.get("verifier") or ""),
        verifier_threshold=float(d.get("verifier_threshold") or 0.0), space=str(d.get("space") or ""),
    )
    for c in d.get("candidates") or ():
        cand = pb.CacheCandidate(entry_id=str(c.get("entry_id") or ""), prompt=str(c.get("prompt") or ""),
                                 cosine=float(c.get("cosine") or 0.0), veto=str(c.get("veto") or ""),
                                 verdict=str(c.get("verdict") or ""))
        if c.get("verifier_score") is not None:
            cand.verifier_score = float(c["verifier_score"])
        msg.candidates.append(cand)
    return msg


def cache_lookup_response(d: Mapping[str, Any] | None) -> Any:
    if d is None:
        return pb.CacheLookupResponse(hit=False)
    entry = d.get("entry")
    entry_dict: Mapping[str, Any] = entry if isinstance(entry, Mapping) else d
    e = cache_entry(entry_dict)
    return pb.CacheLookupResponse(
        hit=True,
        similarity=float(d.get("similarity") or 0.0),
        entry_id=str(d.get("entry_id") or d.get("id") or e.id),
        entry=e,
    )


def cache_list_response(entries: Iterable[Mapping[str, Any]]) -> Any:
    return pb.CacheListResponse(entries=[cache_entry(e) for e in entries])


def config_format(text: str) -> str:
    return "json" if text.lstrip().startswith("{") else "yaml"


# ------------------------------------------------------------------ messages → dicts (client side)

def to_dict(msg: Message) -> dict[str, Any]:
    """A response message as a JSON-ready dict with every field present (defaults included)."""
    out: dict[str, Any] = {}
    for field in msg.DESCRIPTOR.fields:
        value = getattr(msg, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            vt = field.message_type.fields_by_name["value"]
            out[field.name] = {k: round(v, 6) if vt.type == vt.TYPE_FLOAT else v for k, v in value.items()}
        elif field.is_repeated:
            out[field.name] = [to_dict(v) if isinstance(v, Message) else v for v in value]
        elif field.message_type is not None:
            out[field.name] = to_dict(value) if msg.HasField(field.name) else None
        elif field.has_presence and not msg.HasField(field.name):
            out[field.name] = None  # an unset `optional` scalar
        elif field.type == field.TYPE_FLOAT:
            out[field.name] = round(value, 6)  # float32 → shortest sensible decimal
        else:
            out[field.name] = value
    return out
