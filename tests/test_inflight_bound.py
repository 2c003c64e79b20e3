"""The in-flight table's bound is enforced, its drops are counted by reason, its size is a gauge."""

from __future__ import annotations

from pathlib import Path

import yaml

from semrouter.config import load_config
from semrouter.devstack import ROOT
from semrouter.server.app import RouterServer
from semrouter.server.inflight import InflightTable
from semrouter.telemetry.metrics import Metrics


def test_drops_are_counted_by_reason_and_the_size_is_exported() -> None:
    m = Metrics()
    now = [0.0]
    t = InflightTable(max_entries=3, max_age_s=10, clock=lambda: now[0], on_drop=m.record_inflight_drop)
    m.watch(lambda: len(t), lambda: {})
    for rid in ("a", "b", "c", "d", "e"):
        t.put(rid, None, None, 0.0)  # type: ignore[arg-type]
    assert len(t) == 3 and m.value("semrouter_inflight_requests") == 3
    assert m.value("semrouter_inflight_dropped_total", {"reason": "capacity"}) == 2
    assert t.take("c") is not None and m.value("semrouter_inflight_requests") == 2
    now[0] = 11.0
    assert t.take("d") is None  # answered too late: dropped as expired
    t.put("f", None, None, 0.0)  # type: ignore[arg-type]  ("e" has expired too)
    assert m.value("semrouter_inflight_dropped_total", {"reason": "expired"}) == 2
    assert len(t) == 1 and m.value("semrouter_inflight_requests") == 1


async def test_router_builds_the_table_from_config_and_exports_it(tmp_path: Path) -> None:
    cfg = yaml.safe_load((ROOT / "config" / "semrouter.yaml").read_text())
    cfg["server"] = {"listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0", "metrics_listen": None,
                     "max_inflight": 7, "inflight_max_age_seconds": 30}
    cfg["signals"], cfg["cache"] = {"enabled": False}, {"enabled": False}
    path = tmp_path / "semrouter.yaml"
    path.write_text(yaml.safe_dump(cfg))
    srv = await RouterServer.create(load_config(path), path)
    try:
        assert srv.shared.inflight.max_entries == 7
        for i in range(9):
            srv.shared.inflight.put(f"r{i}", None, None, 0.0)  # type: ignore[arg-type]
        m = srv.shared.metrics
        assert m.value("semrouter_inflight_requests") == 7
        assert m.value("semrouter_inflight_dropped_total", {"reason": "capacity"}) == 2
        assert m.value("semrouter_cache_backend_up") == 0  # no cache configured
    finally:
        await srv.stop(0)
