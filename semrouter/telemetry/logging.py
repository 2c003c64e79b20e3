"""Structured logging with structlog: JSON lines in production, coloured console in development.

What never reaches a log line (issue 12 item 6):

* sensitive header values (`semrouter.headers.SENSITIVE`: authorization, cookie, x-api-key, ...) are replaced by
  "[REDACTED]" wherever they appear in an event: as a key of the event dict or of a nested mapping
  (e.g. `headers={...}`), as a (name, value) pair, or as an Envoy-style {"key": name, "value": ...} entry;
* tracebacks carry no local variables (structlog's default for dict and rich tracebacks shows them, which
  printed bearer tokens and prompt prefixes): frames, source lines and the exception message only;
* the current request's secrets and prompt text, registered with `hide_in_logs` on the request path, are
  replaced by "[REDACTED]" in every string of every event logged while that request is handled, exception
  messages included, and so is any copy cut short (a run of at least 40 characters that starts or ends like a
  registered value, raw or repr-escaped); so is anything shaped like `Bearer <token>`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any, Literal, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer

from semrouter.headers import SENSITIVE

REDACTED = "[REDACTED]"
_MAX_DEPTH = 6
_MIN_NEEDLE = 8  # shorter values would redact ordinary words
_EDGE = 40  # a copy cut to this many characters (a repr, a log preview) is still caught
_PAIRS = re.compile(r"[;,&]\s*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
# This request's secrets and prompt text (per asyncio task: one gRPC stream), longest first.
_HIDDEN: ContextVar[tuple[str, ...]] = ContextVar("semrouter_hidden_in_logs", default=())
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


_PLAIN_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def loggable(value: str | None) -> str:
    """A client-chosen string (x-request-id, the requested `model`, a request path) as the router logs it: a value
    of 1-128 plain characters (letters, digits, ``._:@/+=-``) as it is, any other as ``sha256:<first 16 hex
    digits>`` of it: no 60 KB header or 256-character model name on every event, no spaces, quotes or control
    characters in a console log line, and no prose (a prompt, a key) that a client put where a name belongs, which
    the request's own redaction (`hide_in_logs`: message texts, credentials) does not cover. "-" when there is none.
    (A client may send any `x-request-id`: Envoy keeps an external one, envoy.yaml `preserve_external_request_id`.)"""
    if not value:
        return "-"
    if _PLAIN_ID.fullmatch(value):
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def hide_in_logs(values: Iterable[str]) -> None:
    """Register values (credential header values, prompt text) that no log line of the current asyncio task
    may contain, from now until the task ends (an ext_proc stream is one task). A copy cut short (a preview,
    a repr in an exception message) is caught too: any run of text that starts like a value, or ends like it,
    for at least 40 characters (8 for short values)."""
    hidden = set(_HIDDEN.get())
    for v in values:
        if v[:1].isspace() or v[-1:].isspace():
            v = v.strip()
        if len(v) < _MIN_NEEDLE:
            continue
        hidden.add(v)
        if len(v) > _EDGE:  # its repr-escaped form, from the first 4 KB only: a 4 MB prompt costs no 4 MB repr
            esc = repr(v[:4096])[1:-1]
            if esc != v[:4096]:
                hidden.add(esc)
        scheme, _, token = v.partition(" ")
        if scheme.lower() in ("bearer", "basic") and len(token.strip()) >= _MIN_NEEDLE:
            hidden.add(token.strip())
        if "=" in v and len(v) <= 8192:  # cookie-style "a=secret; b=..." values: each secret on its own
            for piece in _PAIRS.split(v):
                secret = piece.partition("=")[2].strip()
                if len(secret) >= _MIN_NEEDLE:
                    hidden.add(secret)
    _HIDDEN.set(tuple(sorted(hidden, key=len, reverse=True)))


def _common_prefix(text: str, at: int, value: str) -> int:
    """How many characters of `value` appear in `text` from position `at` on."""
    n, step = 0, 256
    limit = min(len(value), len(text) - at)
    while n + step <= limit and text[at + n: at + n + step] == value[n: n + step]:
        n += step
    while n < limit and text[at + n] == value[n]:
        n += 1
    return n


def _scrub(text: str, hidden: tuple[str, ...]) -> str:
    for v in hidden:
        head, tail = v[:_EDGE], v[-_EDGE:]
        at = text.find(head)
        while at >= 0:  # a copy of v, or of its beginning
            text = text[:at] + REDACTED + text[at + _common_prefix(text, at, v):]
            at = text.find(head, at + len(REDACTED))
        if len(v) > _EDGE and tail in text:  # a copy of its end
            text = text.replace(tail, REDACTED)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def _scrub_all(value: Any, needles: tuple[str, ...], depth: int = 0) -> Any:
    if isinstance(value, str):
        return _scrub(value, needles)
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {k: _scrub_all(v, needles, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_all(v, needles, depth + 1) for v in value]
    return value


def scrub_hidden(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: removes the current request's registered values (and bearer tokens) from every
    string in the event, the rendered exception included. Runs after the exception is rendered."""
    needles = _HIDDEN.get()
    for k, v in list(event_dict.items()):
        if isinstance(v, (str, Mapping, list, tuple)):
            event_dict[k] = _scrub_all(v, needles)
    return event_dict


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
    # Tracebacks are rendered here, without local variables, so that scrub_hidden sees their text.
    exceptions: Any = (
        structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        if format == "json" else structlog.processors.format_exc_info
    )
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if format == "json"
        else structlog.dev.ConsoleRenderer(colors=out.isatty() if hasattr(out, "isatty") else False,
                                           exception_formatter=structlog.dev.plain_traceback)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_sensitive,
        exceptions,
        scrub_hidden,
    ]
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
