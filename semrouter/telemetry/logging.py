"""Structured logging with structlog: JSON lines in production, coloured console in development.

Sensitive header values (authorization, cookie, x-api-key, proxy-authorization) are replaced
by "[REDACTED]" wherever they appear in an event: as a key of the event dict or of a nested
mapping (e.g. `headers={...}`), as a (name, value) pair, or as an Envoy-style
{"key": name, "value": ...} header entry.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog

from semrouter.headers import SENSITIVE

REDACTED = "[REDACTED]"
_MAX_DEPTH = 6
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _is_sensitive(name: Any) -> bool:
    if isinstance(name, bytes):
        name = name.decode("latin-1", "replace")
    return isinstance(name, str) and name.strip().lower().replace("_", "-") in SENSITIVE


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        if "key" in value and _is_sensitive(value.get("key")):
            return {k: (REDACTED if k in ("value", "raw_value") else v) for k, v in value.items()}
        return {k: (REDACTED if _is_sensitive(k) else _redact(v, depth + 1)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and _is_sensitive(value[0]) and not isinstance(value[1], (list, tuple, Mapping)):
            return type(value)((value[0], REDACTED)) if isinstance(value, tuple) else [value[0], REDACTED]
        items = [_redact(v, depth + 1) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return value


def redact_sensitive(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: hides sensitive header values anywhere in the event."""
    for k in list(event_dict.keys()):
        v = event_dict[k]
        if _is_sensitive(k):
            event_dict[k] = REDACTED
        elif isinstance(v, (Mapping, list, tuple)):
            event_dict[k] = _redact(v)
    return event_dict


def configure_logging(
    format: Literal["json", "console"] = "json",  # noqa: A002 - mirrors the config key
    level: str = "info",
    stream: TextIO | None = None,
) -> None:
    """Configure structlog (and route stdlib `logging`, e.g. grpc's, through the same level).

    `stream` defaults to stderr; tests pass a StringIO.
    """
    if format not in ("json", "console"):
        raise ValueError(f"logging format must be 'json' or 'console', got {format!r}")
    lvl = _LEVELS.get(level.lower())
    if lvl is None:
        raise ValueError(f"logging level must be one of {sorted(_LEVELS)}, got {level!r}")
    out = stream if stream is not None else sys.stderr
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if format == "json"
        else structlog.dev.ConsoleRenderer(colors=out.isatty() if hasattr(out, "isatty") else False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_sensitive,
    ]
    if format == "json":
        shared.append(structlog.processors.dict_tracebacks)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # stdlib loggers (grpc, asyncio, pymilvus) go through the same processors and renderer.
    root = logging.getLogger()
    root.setLevel(lvl)
    for h in [h for h in root.handlers if getattr(h, "_semrouter", False)]:
        root.removeHandler(h)
    handler = logging.StreamHandler(out)
    handler._semrouter = True  # type: ignore[attr-defined]
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root.addHandler(handler)
