"""server/aging_map.AgingMap: bounded in size and age, least recently used first, drops reported."""

from __future__ import annotations

from semrouter.server.aging_map import AgingMap


def test_bounds_order_and_drops() -> None:
    now = [0.0]
    drops: list[str] = []
    m: AgingMap[str, int] = AgingMap(2, 10.0, clock=lambda: now[0], on_drop=drops.append)
    m.put("a", 1)
    m.put("b", 2)
    assert m.get("a") == 1  # a is now the most recently used
    m.put("c", 3)
    assert "b" not in m and len(m) == 2 and drops == ["capacity"]
    assert not m.put("a", 9, replace=False) and m.get("a") == 1
    now[0] = 11.0
    assert m.get("a") is None  # older than 10 s counts from its put, whatever it was used since
    assert m.pop("c") is None and drops == ["capacity", "expired"]
    m.put("d", 4)  # the expired a goes on the next put
    assert "a" not in m and drops[-1] == "expired" and m.pop("d") == 4 and len(m) == 0
