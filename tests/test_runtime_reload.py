"""Reload inside one router process: one change reloads once, every failure is a counted rejection, the
watcher survives, unchanged heavy parts are shared and replaced ones are closed when their streams end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from semrouter.config import load_config
from semrouter.devstack import ROOT
from semrouter.server.app import RouterServer, watch_config

MODELS = ROOT / "models"


def write_config(path: Path, **sections: Any) -> None:
    cfg = yaml.safe_load((ROOT / "config" / "semrouter.yaml").read_text())
    cfg["server"] = {"listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0", "metrics_listen": None,
                     "watch_config_seconds": 0}
    cfg["signals"] = {"enabled": False}
    cfg["cache"] = {"enabled": False}
    for key, value in sections.items():
        cfg[key] = value
    path.write_text(yaml.safe_dump(cfg))


def reloads(srv: RouterServer, result: str) -> float:
    return srv.shared.metrics.value("semrouter_config_reloads_total", {"result": result}) or 0.0


def add_rule(path: Path, word: str) -> None:
    cfg = yaml.safe_load(path.read_text())
    cfg["keyword_rules"] = [*cfg.get("keyword_rules", []), {"name": word, "category": "math", "keywords": [word]}]
    path.write_text(yaml.safe_dump(cfg))


async def started(path: Path) -> RouterServer:
    return await RouterServer.create(load_config(path), path)


async def test_one_change_reloads_once_whoever_asks(tmp_path: Path) -> None:
    path = tmp_path / "semrouter.yaml"
    write_config(path)
    srv = await started(path)
    watcher = asyncio.create_task(watch_config(srv, path, 0.02))
    await asyncio.sleep(0.05)  # the watcher has read the file's first stamp
    try:
        add_rule(path, "pirates")
        # SIGHUP, the admin RPC and the watcher all fire for this one edit
        results = await asyncio.gather(srv.reload(), srv.reload())
        await asyncio.sleep(0.2)  # the watcher has seen the change by now
        assert reloads(srv, "success") == 1
        assert sorted(r[1] for r in results) == ["", "unchanged"]
        assert [r.name for r in srv.holder.current.config.keyword_rules][-1] == "pirates"
        assert (await srv.reload(force=True))[0] and reloads(srv, "success") == 2  # force rebuilds
    finally:
        watcher.cancel()
        await srv.stop(0)


async def test_missing_model_dir_is_a_counted_rejection_and_the_watcher_survives(tmp_path: Path) -> None:
    path = tmp_path / "semrouter.yaml"
    write_config(path)
    srv = await started(path)
    before = srv.holder.current
    watcher = asyncio.create_task(watch_config(srv, path, 0.02))
    await asyncio.sleep(0.05)  # the watcher has read the file's first stamp
    try:
        write_config(path, signals={"enabled": True, "model_dir": str(tmp_path / "no-such-dir")})
        for _ in range(100):
            if reloads(srv, "error"):
                break
            await asyncio.sleep(0.02)
        assert reloads(srv, "error") == 1 and reloads(srv, "success") == 0
        assert srv.holder.current is before
        ok, why, _ = await srv.reload()  # SIGHUP after the bad edit: a build failure is tried again
        assert not ok and "manifest.json" in why and reloads(srv, "error") == 2
        assert not watcher.done()
        # an invalid file (schema) is rejected once, and a second signal for the same bytes is not re-counted
        path.write_text(path.read_text().replace("default_model: llama-3.1-8b", "default_model: ghost"))
        for _ in range(100):
            if reloads(srv, "error") == 3:
                break
            await asyncio.sleep(0.02)
        ok, why, _ = await srv.reload()
        assert not ok and "routing.default_model" in why and reloads(srv, "error") == 3
        # the watcher still applies the next good change
        write_config(path)
        add_rule(path, "buccaneers")
        for _ in range(100):
            if reloads(srv, "success"):
                break
            await asyncio.sleep(0.02)
        assert reloads(srv, "success") == 1 and not watcher.done()
        assert srv.holder.current.config.keyword_rules[-1].name == "buccaneers"
    finally:
        watcher.cancel()
        await srv.stop(0)


async def test_unreadable_file_is_a_rejection_not_an_exception(tmp_path: Path) -> None:
    path = tmp_path / "semrouter.yaml"
    write_config(path)
    srv = await started(path)
    try:
        path.unlink()
        ok, why, version = await srv.reload()
        assert not ok and "cannot read" in why and version == srv.holder.current.version
        assert reloads(srv, "error") == 1
    finally:
        await srv.stop(0)


@pytest.mark.skipif(not (MODELS / "manifest.json").exists(), reason="models not built (make models)")
async def test_reload_shares_unchanged_signals_and_closes_replaced_ones_when_streams_end(tmp_path: Path) -> None:
    path = tmp_path / "semrouter.yaml"
    signals = {"enabled": True, "model_dir": str(MODELS), "pii": {"enabled": False}}
    write_config(path, signals=signals)
    srv = await started(path)
    try:
        first = srv.holder.current
        add_rule(path, "pirates")  # routing only: the analyzer is shared, nothing is loaded again
        assert (await srv.reload())[0]
        second = srv.holder.current
        assert second is not first and second.analyzer is first.analyzer
        await asyncio.sleep(0.05)
        assert (await second.analyzer.analyze("hello")).embedding is not None  # not closed by first's retirement

        in_use = srv.holder.acquire()  # a stream that started on `second`
        write_config(path, signals={**signals, "max_tokens": 128})  # signals changed: a new analyzer
        assert (await srv.reload())[0]
        third = srv.holder.current
        assert third.analyzer is not second.analyzer
        await asyncio.sleep(0.1)
        assert (await second.analyzer.analyze("still serving")).embedding is not None  # its stream is open
        srv.holder.release(in_use)
        await asyncio.sleep(0.1)
        with pytest.raises(Exception):  # closed as soon as the last stream ended
            await asyncio.wait_for(second.analyzer.analyze("closed"), 2)
        assert (await third.analyzer.analyze("new")).embedding is not None
    finally:
        await srv.stop(0)


async def test_reload_with_a_new_language_section_gets_an_analyzer_with_the_new_detector(tmp_path: Path) -> None:
    path = tmp_path / "semrouter.yaml"
    signals = {"enabled": True, "model_dir": str(MODELS), "pii": {"enabled": False}}
    write_config(path, signals=signals)
    srv = await started(path)
    try:
        first = srv.holder.current
        assert first.language is not None
        assert (await first.analyzer.analyze("¿Qué hora es ahora mismo?")).language == "es"
        # Spanish is no longer detected: the analyzer (which detects beside its encoder run) must not be shared
        write_config(path, signals=signals, language={"detect": ["en", "fr"]})
        assert (await srv.reload())[0]
        second = srv.holder.current
        assert second.analyzer is not first.analyzer and second.language is not first.language
        assert (await second.analyzer.analyze("¿Qué hora es ahora mismo?")).language in ("fr", "und", "en")
        add_rule(path, "pirates")  # routing only: analyzer and detector shared
        assert (await srv.reload())[0]
        third = srv.holder.current
        assert third.analyzer is second.analyzer and third.language is second.language
    finally:
        await srv.stop(0)


async def test_a_reload_rotates_the_admin_token_and_refuses_to_move_a_listener(tmp_path: Path) -> None:
    """The admin token was read once at start-up: a reload that rotated a leaked `server.admin_token` reported
    success while the old token kept working. And a reload that moved the admin API or the metrics to another
    address (off a public interface, say) reported success while the old socket stayed open. Now the token is the
    current config's at every call, and a listener change is a rejection naming the key (nothing of it applied)."""
    import grpc

    from semrouter.admin.client import AdminCallError, AdminClient

    path = tmp_path / "semrouter.yaml"
    server = {"listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0", "metrics_listen": None,
              "watch_config_seconds": 0}
    write_config(path, server={**server, "admin_token": "leaked-token-1"})
    srv = await started(path)
    await srv.start()
    target = f"127.0.0.1:{srv.admin_port}"

    async def version(token: str) -> str:
        async with AdminClient(target, token=token) as c:
            return (await c.get_config())["version"]

    try:
        first = await version("leaked-token-1")
        write_config(path, server={**server, "admin_token": "fresh-token-2"})
        ok, _, second = await srv.reload()
        assert ok and second != first
        with pytest.raises(AdminCallError) as e:
            await version("leaked-token-1")
        assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
        assert await version("fresh-token-2") == second

        for key, value in (("admin_listen", "0.0.0.0:0"), ("metrics_listen", "127.0.0.1:0")):
            write_config(path, server={**server, "admin_token": "fresh-token-2", key: value})
            ok, error, serving = await srv.reload()
            assert not ok and f"server.{key}" in error and "restart" in error and serving == second
        assert reloads(srv, "error") == 2 and await version("fresh-token-2") == second
    finally:
        await srv.stop(0)


async def test_a_reload_names_the_settings_that_wait_for_a_restart(tmp_path: Path) -> None:
    """Settings read once at start-up (the in-flight table's bound, endpoint health, the watcher, logging, tracing)
    were accepted by a reload that reported plain success while the process kept the old values. The reload now
    applies the rest and names those keys; it keeps naming them until a restart, whatever other edits follow."""
    path = tmp_path / "semrouter.yaml"
    server = {"listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0", "metrics_listen": None,
              "watch_config_seconds": 0}
    write_config(path, server=server)
    srv = await started(path)
    try:
        write_config(path, server={**server, "max_inflight": 123})
        ok, note, _ = await srv.reload()
        assert ok and "server.max_inflight" in note and "restart" in note
        assert srv.shared.inflight.max_entries != 123  # what the note says: not in effect yet
        add_rule(path, "lanterns")  # an unrelated edit later: still named
        ok, note, _ = await srv.reload()
        assert ok and "server.max_inflight" in note
        assert [r.name for r in srv.holder.current.config.keyword_rules][-1] == "lanterns"
        write_config(path, server=server)  # back to the started value: nothing waits
        ok, note, _ = await srv.reload()
        assert ok and note == ""
    finally:
        await srv.stop(0)


@pytest.mark.skipif(not (MODELS / "manifest.json").exists(), reason="models not built (make models)")
async def test_a_reload_that_names_restart_keys_still_closes_the_replaced_runtime(tmp_path: Path) -> None:
    """A reload whose note names restart-only keys returned before retiring the old runtime: its analyzer (ONNX
    sessions) and cache stayed open, on every later reload too (the note names the keys until a restart)."""
    path = tmp_path / "semrouter.yaml"
    server = {"listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0", "metrics_listen": None,
              "watch_config_seconds": 0}
    signals = {"enabled": True, "model_dir": str(MODELS), "pii": {"enabled": False}}
    write_config(path, server=server, signals=signals)
    srv = await started(path)
    try:
        first = srv.holder.current
        write_config(path, server={**server, "max_inflight": 123}, signals={**signals, "max_tokens": 128})
        ok, note, _ = await srv.reload()
        assert ok and "server.max_inflight" in note
        second = srv.holder.current
        assert second.analyzer is not first.analyzer
        await asyncio.sleep(0.1)
        with pytest.raises(Exception):  # replaced and no stream on it: closed
            await asyncio.wait_for(first.analyzer.analyze("closed"), 2)
        write_config(path, server={**server, "max_inflight": 123}, signals={**signals, "max_tokens": 96})
        ok, note, _ = await srv.reload()  # a later edit: still named, and the one it replaces is closed too
        assert ok and "server.max_inflight" in note
        await asyncio.sleep(0.1)
        with pytest.raises(Exception):
            await asyncio.wait_for(second.analyzer.analyze("closed"), 2)
        assert (await srv.holder.current.analyzer.analyze("new")).embedding is not None
    finally:
        await srv.stop(0)


async def test_shutdown_drains_for_the_reloaded_grace_seconds(tmp_path: Path) -> None:
    """server.grace_seconds was read from the start-up config at shutdown: a reload accepted a new value without
    naming it as waiting for a restart, and shutdown used the old one."""
    path = tmp_path / "semrouter.yaml"
    server = {"listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0", "metrics_listen": None,
              "watch_config_seconds": 0, "grace_seconds": 5.0}
    write_config(path, server=server)
    srv = await started(path)
    await srv.start()
    write_config(path, server={**server, "grace_seconds": 0.25})
    ok, note, _ = await srv.reload()
    assert ok and note == ""
    graces: list[float | None] = []
    stop = srv.server.stop

    async def recording_stop(grace: float | None) -> None:
        graces.append(grace)
        await stop(grace)

    srv.server.stop = recording_stop  # type: ignore[method-assign]
    await srv.stop()
    assert graces == [0.25]
