"""`semrouter cache` subcommands against Milvus Lite embedded in a tmp dir."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from semrouter.cache import SemanticCache
from semrouter.cache.cli import add_parser
from semrouter.cache.testing import HashEmbedder, completion
from semrouter.config import load_config
from semrouter.request.parse import ChatRequest


def write_config(tmp_path: Path, cache_setting: str = "dimension: 16") -> Path:
    """A one-model router config with the cache on (Milvus Lite under tmp_path) and `cache_setting` in its cache."""
    p = tmp_path / "router.yaml"
    p.write_text(f"""
routing: {{default_model: m1}}
models:
  - name: m1
    endpoints: [{{address: 127.0.0.1, port: 8000}}]
cache:
  enabled: true
  {cache_setting}
  milvus: {{uri: "{tmp_path / 'milvus' / 'cache.db'}"}}
""")
    return p


async def seed(config: Path) -> None:
    cfg = load_config(config).cache
    cache = await SemanticCache.create(cfg, HashEmbedder(16), maintenance=False)
    try:
        for tenant, text in (("alice", "first question"), ("bob", "second question"), ("bob", "third one")):
            msgs = ({"role": "user", "content": text},)
            key = cache.key_for(ChatRequest({"model": "m1", "messages": list(msgs)}, "m1", msgs, False), {},
                                tenant=tenant)
            cache.store_in_background(key, None, 200, "application/json", completion(f"re: {text}"), False)
        await cache.flush()
    finally:
        await cache.close()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object]:
    parser = argparse.ArgumentParser(prog="semrouter")
    add_parser(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(list(argv))
    rc = args.func(args)
    out = capsys.readouterr().out
    return rc, json.loads(out) if rc == 0 else None


def test_cache_cli_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    asyncio.run(seed(config))
    capsys.readouterr()  # drop the seeding's log lines
    c = str(config)
    rc, stats = cli(capsys, "cache", "stats", "--config", c)
    assert rc == 0 and stats["entries"] == 3 and stats["backend"] == "milvus"
    rc, rows = cli(capsys, "cache", "list", "--config", c, "--tenant", "bob")
    assert rc == 0 and len(rows) == 2 and {r["tenant"] for r in rows} == {"bob"}
    rc, entry = cli(capsys, "cache", "inspect", "--config", c, rows[0]["id"])
    assert rc == 0 and "re: " in entry["body"]
    rc, _ = cli(capsys, "cache", "inspect", "--config", c, "no-such-id")
    assert rc == 1
    rc, res = cli(capsys, "cache", "delete", "--config", c, "--id", rows[0]["id"])
    assert rc == 0 and res == {"deleted": 1}
    rc, res = cli(capsys, "cache", "delete", "--config", c, "--tenant", "bob")
    assert rc == 0 and res == {"deleted": 1}
    rc, _ = cli(capsys, "cache", "clear", "--config", c)
    assert rc == 1  # needs --yes
    rc, res = cli(capsys, "cache", "clear", "--config", c, "--yes")
    assert rc == 0 and res == {"deleted": 1}
    rc, stats = cli(capsys, "cache", "stats", "--config", c)
    assert stats["entries"] == 0


def test_local_output_has_the_admin_api_shapes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--config` prints the admin API's message fields (what `--router` prints), with real values."""
    from semrouter.admin._proto import pb

    config = write_config(tmp_path)
    asyncio.run(seed(config))
    capsys.readouterr()
    c = str(config)
    fields = lambda msg: {f.name for f in msg.DESCRIPTOR.fields}  # noqa: E731
    _, stats = cli(capsys, "cache", "stats", "--config", c)
    assert set(stats) == fields(pb.CacheStatsResponse) and stats["entries"] == 3
    _, rows = cli(capsys, "cache", "list", "--config", c, "--tenant", "alice")
    assert set(rows[0]) == fields(pb.CacheEntry)
    assert rows[0]["created_at_unix"] > 1.7e9 and rows[0]["expires_at_unix"] > rows[0]["created_at_unix"]
    assert rows[0]["response_bytes"] > 0 and rows[0]["prompt"] == "first question" and rows[0]["body"] == ""
    _, entry = cli(capsys, "cache", "inspect", "--config", c, rows[0]["id"])
    assert set(entry) == fields(pb.CacheEntry) and entry["response_bytes"] == len(entry["body"].encode())


def test_locked_file_gets_one_line_naming_router(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Another process (a running router) holds the Milvus Lite file: one line on stderr naming --router."""
    import subprocess
    import sys

    config = write_config(tmp_path)
    uri = str(tmp_path / "milvus" / "cache.db")
    (tmp_path / "milvus").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom pymilvus import MilvusClient\n"
                               f"c = MilvusClient(uri={uri!r})\nprint('ready', flush=True)\ntime.sleep(120)"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        capsys.readouterr()
        parser = argparse.ArgumentParser(prog="semrouter")
        add_parser(parser.add_subparsers(dest="cmd", required=True))
        args = parser.parse_args(["cache", "list", "--config", str(config)])
        rc = args.func(args)
        err = capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert rc == 1 and "--router" in err and err.count("\n") == 1, err


def test_stats_reports_the_verifier_the_router_runs_and_no_milvus_warning(tmp_path: Path,
                                                                         capfd: pytest.CaptureFixture[str]) -> None:
    """`stats --config` reported "rules (learned model unavailable)" (the CLI process had loaded no verifier; the
    router runs the learned one), and every command printed a pymilvus WARNING line on stderr."""
    from semrouter.devstack import ROOT

    if not (ROOT / "models" / "cache_verifier_cross.onnx").exists():
        pytest.skip("models/ not built: run `make models`")
    p = write_config(tmp_path, f"cross_model: {ROOT / 'models' / 'cache_verifier_cross.onnx'}")
    for cmd in ("stats", "list"):
        parser = argparse.ArgumentParser(prog="semrouter")
        add_parser(parser.add_subparsers(dest="cmd", required=True))
        args = parser.parse_args(["cache", cmd, "--config", str(p)])
        assert args.func(args) == 0
        out, err = capfd.readouterr()
        assert "WARNING" not in err, err
        if cmd == "stats":
            assert json.loads(out)["details"]["verifier"] == "cross"  # the default, loaded


def test_without_config_or_router_the_shipped_config_path_is_used(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """README's `semrouter cache explain "PROMPT" [--tenant T --model M]` and "in-process by default": every cache
    command required --config or --router (an argparse error), unlike `semrouter classify`. Now --config defaults to
    config/semrouter.yaml, as for classify and serve."""
    (tmp_path / "config").mkdir()
    write_config(tmp_path).rename(tmp_path / "config" / "semrouter.yaml")
    monkeypatch.chdir(tmp_path)
    rc, stats = cli(capsys, "cache", "stats")
    assert rc == 0 and stats["backend"] == "milvus" and stats["entries"] == 0
