"""`semrouter cache ...`: inspect and manage the configured cache backend in-process.

    semrouter cache stats   --config FILE
    semrouter cache list    --config FILE [--tenant T] [--model M] [--limit N]
    semrouter cache inspect --config FILE ID
    semrouter cache delete  --config FILE (--id ID | --tenant T | --model M)
    semrouter cache clear   --config FILE --yes

No embedder is loaded: none of these needs one. Milvus Lite (a local .db path) is opened by one
process at a time; while the router runs, use `--router HOST:PORT` instead of `--config`: stats, list,
delete and clear then go through the router's admin API.
Output is JSON on stdout; exit status 1 on errors (message on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import structlog

from semrouter.cache.semantic import SemanticCache


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("cache", help="inspect and manage the semantic cache")
    sub = p.add_subparsers(dest="cache_cmd", required=True)

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_)
        where = c.add_mutually_exclusive_group(required=True)
        where.add_argument("--config", help="router configuration YAML (opens the backend in-process)")
        where.add_argument("--router", metavar="HOST:PORT", help="a running router's admin API")
        c.set_defaults(func=run)
        return c

    cmd("stats", "entry count and counters")
    ls = cmd("list", "list entries (newest data first as the backend returns them)")
    ls.add_argument("--tenant")
    ls.add_argument("--model")
    ls.add_argument("--limit", type=int, default=50)
    ins = cmd("inspect", "show one entry with its stored answer")
    ins.add_argument("id")
    de = cmd("delete", "delete entries by id, tenant or model")
    de.add_argument("--id", dest="entry_id")
    de.add_argument("--tenant")
    de.add_argument("--model")
    cl = cmd("clear", "delete every entry (the collection itself is kept)")
    cl.add_argument("--yes", action="store_true", help="confirm")


def run(args: argparse.Namespace) -> int:
    if not structlog.is_configured():  # keep stdout for the JSON answer
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.__stderr__))
    try:
        out = asyncio.run(_run(args))
    except Exception as e:
        print(f"semrouter cache {args.cache_cmd}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    return 0


async def _remote(args: argparse.Namespace) -> Any:
    """The same commands through the router's admin API (needed for an embedded Milvus Lite file)."""
    import os

    from semrouter.admin.client import TOKEN_ENV, AdminClient

    async with AdminClient(args.router, token=os.environ.get(TOKEN_ENV) or None) as c:
        match args.cache_cmd:
            case "stats":
                return await c.cache_stats()
            case "list":
                return await c.cache_list(args.tenant or "", args.model or "", args.limit)
            case "delete":
                return await c.cache_delete(args.entry_id or "", args.tenant or "", args.model or "")
            case "clear":
                return await c.cache_clear()
    raise ValueError(f"`cache {args.cache_cmd}` is not available through --router; use --config")


async def _run(args: argparse.Namespace) -> Any:
    from semrouter.config import load_config

    if args.cache_cmd == "clear" and not args.yes:
        raise ValueError("refusing to clear without --yes")
    if args.cache_cmd == "delete" and not (args.entry_id or args.tenant or args.model):
        raise ValueError("give --id, --tenant or --model")
    if args.router:
        return await _remote(args)

    cfg = load_config(args.config).cache
    cache = await SemanticCache.create(cfg, None, maintenance=False)
    try:
        if not (await cache.stats())["backend_up"]:
            raise RuntimeError(f"cache backend {cfg.backend} is not reachable")
        match args.cache_cmd:
            case "stats":
                return await cache.stats()
            case "list":
                return await cache.list_entries(args.tenant, args.model, args.limit)
            case "inspect":
                found = await cache.inspect(args.id)
                if found is None:
                    raise LookupError(f"no entry {args.id!r}")
                return found
            case "delete":
                return {"deleted": await cache.delete(args.entry_id, args.tenant, args.model)}
            case "clear":
                return {"deleted": await cache.clear()}
    finally:
        await cache.close()
    raise ValueError(f"unknown command {args.cache_cmd}")
