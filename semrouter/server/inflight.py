"""Requests the router has forwarded, waiting for their answer to be observed.

With the shipped Envoy configs the router does not process response phases on the request's own
ext_proc stream: a second ext_proc filter in observability mode ("send and go") streams every answer
to the router without Envoy waiting for replies. That observer stream finds what the request stream
decided here, by the router-minted join nonce (headers.JOIN) that Envoy copies from the forwarded request onto
its answer. Never by `x-request-id`: Envoy keeps a client-sent id, so two clients sending the same id would
get each other's answers (issue 12). A client cannot send the nonce (Envoy strips the router's header
namespace before anything else runs), and a join also checks that the answer carries the x-request-id its
request had. Entries are taken once, and the table is bounded in size and age, so a request whose answer
never comes (client gone, upstream reset) costs nothing for long.

Bound: at most `max_entries` requests (`server.max_inflight`, default 50,000; a few KB each, the
prompt's embedding included), none older than `max_age_s` (`server.inflight_max_age_seconds`, 900 s).
Beyond either, the oldest entry is dropped: its answer is still delivered to the client, but the router
does not see it (no cache store, no endpoint-health or token metrics for it). Size and drops are
exported (`semrouter_inflight_requests`, `semrouter_inflight_dropped_total{reason}`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from semrouter.server.aging_map import AgingMap
from semrouter.server.state import Routed


@dataclass(frozen=True, slots=True)
class Inflight:
    """A forwarded request, for its observer stream: the runtime it was decided with, the decision, when it
    started (monotonic s) and its x-request-id (checked on the answer)."""

    runtime: Any  # semrouter.runtime.Runtime the request was decided with
    routed: Routed
    started_at: float
    request_id: str = "-"


def new_join_key() -> str:
    """An unguessable single-use join nonce: 128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(16)


class InflightTable:
    """Join nonce → `Inflight`, each taken once; bounded in size and age (server/aging_map.py)."""

    def __init__(self, max_entries: int = 50_000, max_age_s: float = 900.0,
                 clock: Callable[[], float] = time.monotonic,
                 on_drop: Callable[[str], None] | None = None) -> None:
        """`on_drop(reason)` is called for each entry dropped unanswered: reason "capacity" or "expired"."""
        self._items: AgingMap[str, Inflight] = AgingMap(max_entries, max_age_s, clock, on_drop)

    @property
    def max_entries(self) -> int:
        """The size bound (`server.max_inflight`)."""
        return self._items.max_entries

    def __len__(self) -> int:
        return len(self._items)

    def put(self, join: str, runtime: Any, routed: Routed, started_at: float, request_id: str = "-") -> None:
        """Remember what `join` (a `new_join_key()`) decided. A key already present is never overwritten."""
        if join:
            self._items.put(join, Inflight(runtime, routed, started_at, request_id), replace=False)

    def take(self, join: str, request_id: str | None = None) -> Inflight | None:
        """The entry for `join`, once. With `request_id`, an entry recorded for another x-request-id is dropped
        and None returned (an answer that is not the one its request expects is never joined; not counted as a
        drop: only a forged answer can do that)."""
        item = self._items.pop(join) if join else None
        if item is None or (request_id is not None and item.request_id != request_id):
            return None
        return item
