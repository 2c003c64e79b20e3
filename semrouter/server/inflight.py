"""Requests the router has forwarded, waiting for their answer to be observed.

With the shipped Envoy configs the router does not process response phases on the request's own
ext_proc stream: a second ext_proc filter in observability mode ("send and go") streams every answer
to the router without Envoy waiting for replies. That observer stream finds what the request stream
decided here, by `x-request-id` (the observer also receives the request headers, without Envoy waiting).
Entries are taken once, and the table is bounded in size and age, so a request whose answer never
comes (client gone, upstream reset) costs nothing for long.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from semrouter.server.state import Routed


@dataclass(frozen=True, slots=True)
class Inflight:
    runtime: Any  # semrouter.runtime.Runtime the request was decided with
    routed: Routed
    started_at: float


class InflightTable:
    def __init__(self, max_entries: int = 50_000, max_age_s: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._items: OrderedDict[str, tuple[float, Inflight]] = OrderedDict()
        self._max = max_entries
        self._max_age = max_age_s
        self._clock = clock

    def __len__(self) -> int:
        return len(self._items)

    def put(self, request_id: str, runtime: Any, routed: Routed, started_at: float) -> None:
        if not request_id or request_id == "-":
            return
        now = self._clock()
        self._items[request_id] = (now, Inflight(runtime, routed, started_at))
        self._items.move_to_end(request_id)
        while self._items:
            oldest_id, (t, _) = next(iter(self._items.items()))
            if len(self._items) <= self._max and now - t <= self._max_age:
                break
            del self._items[oldest_id]

    def take(self, request_id: str) -> Inflight | None:
        item = self._items.pop(request_id, None)
        if item is None or self._clock() - item[0] > self._max_age:
            return None
        return item[1]
