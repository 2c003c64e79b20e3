"""A dict bounded in size and age: the oldest entry goes first (an LRU map with a TTL).

Both per-process tables on the request path are one: requests awaiting their answer (server/inflight.py) and
which model and endpoint produced each Responses id (server/conversations.py).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class AgingMap(Generic[K, V]):
    """At most `max_entries` entries, none older than `max_age_s` seconds (by `clock`, from when it was put).

    Order is put order, and `get` moves an entry to the newest end (least recently used goes first); an entry's
    age still counts from its put. Beyond either bound, `put` drops from the oldest end and calls
    `on_drop(reason)` for each ("capacity" or "expired"); `pop` of an expired entry drops it with "expired".
    An expired entry that nothing has dropped yet is never returned.
    """

    def __init__(self, max_entries: int, max_age_s: float, clock: Callable[[], float] = time.monotonic,
                 on_drop: Callable[[str], None] | None = None) -> None:
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._max = max_entries
        self._max_age = max_age_s
        self._clock = clock
        self._on_drop = on_drop

    @property
    def max_entries(self) -> int:
        """The size bound."""
        return self._max

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def put(self, key: K, value: V, replace: bool = True) -> bool:
        """Store `value` as the newest entry; with `replace` False a key already present is left as it is (and
        False returned). Evicts beyond the bounds."""
        if not replace and key in self._items:
            return False
        now = self._clock()
        self._items[key] = (now, value)
        self._items.move_to_end(key)
        while self._items:
            oldest, (t, _) = next(iter(self._items.items()))
            expired = now - t > self._max_age
            if len(self._items) <= self._max and not expired:
                break
            del self._items[oldest]
            self._dropped("expired" if expired else "capacity")
        return True

    def get(self, key: K) -> V | None:
        """The value for `key` (now the most recently used), or None when absent or older than `max_age_s`."""
        item = self._items.get(key)
        if item is None or self._clock() - item[0] > self._max_age:
            return None
        self._items.move_to_end(key)
        return item[1]

    def pop(self, key: K) -> V | None:
        """Remove and return the value for `key`; None when absent, or when expired (dropped as "expired")."""
        item = self._items.pop(key, None)
        if item is None:
            return None
        if self._clock() - item[0] > self._max_age:
            self._dropped("expired")
            return None
        return item[1]

    def _dropped(self, reason: str) -> None:
        if self._on_drop is not None:
            self._on_drop(reason)
