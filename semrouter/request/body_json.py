"""Serialising a rewritten request body: compact UTF-8 JSON, fast enough to stay on the event loop.

`json.dumps` of a 4 MB body (server.max_body_bytes) holds the event loop ~7 ms; orjson (Rust) writes the same
JSON values in ~0.3 ms (benchmarks/bench_loop_steps.py). The output is the JSON the standard library would
write for the same object (same values, key order kept, no whitespace, non-ASCII as UTF-8); number spelling may
differ (`1e16` vs `1e+16`). A value orjson refuses (an integer beyond 64 bits, which `json.loads` accepts) falls
back to the standard library, so nothing a validated body may hold fails here.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(obj: Any) -> bytes:
    """`obj` (JSON values: dict, list, str, int, float, bool, None; no NaN or lone surrogates, which
    request/validate.py rejects) → compact UTF-8 JSON bytes. Raises TypeError only for what `json.dumps` also
    refuses (a non-JSON type)."""
    try:
        return orjson.dumps(obj)
    except TypeError:  # e.g. an int beyond 64 bits; a NaN never reaches here (request/validate.py rejects it)
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
