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


def write_config(tmp_path: Path) -> Path:
    p = tmp_path / "router.yaml"
    p.write_text(f"""
routing: {{default_model: m1}}
models:
  - name: m1
    endpoints: [{{address: 127.0.0.1, port: 8000}}]
cache:
  enabled: true
  dimension: 16
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
