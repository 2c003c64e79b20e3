"""`semrouter cache ...`: inspect and manage the configured cache backend in-process.

    semrouter cache stats   --config FILE
    semrouter cache list    --config FILE [--tenant T] [--model M] [--limit N]
    semrouter cache inspect --config FILE ID
    semrouter cache delete  --config FILE (--id ID | --tenant T | --model M)
    semrouter cache clear   --config FILE --yes
    semrouter cache explain --config FILE "<prompt>" [--tenant T] [--model M] [--category C]
    semrouter cache explain --config FILE --request BODY [--api chat|responses|messages] [--tenant T]

`--config` defaults to config/semrouter.yaml. Every command also works with `--router HOST:PORT` (the running
router's admin API) instead of `--config`, and prints the same fields with the same values in both modes: the
admin API's message shapes (`CacheEntry`, `CacheStatsResponse`, `CacheExplainResponse` in
proto/semrouter/v1/router.proto).
Milvus Lite (a local .db path) is opened by one process at a time: while the router runs, `--config`
stops with one line naming `--router`. Only `explain --config` loads the encoder (to embed the prompt).
`explain "<prompt>"` keys the prompt as the only message of a chat request with no parameters; a request
sent with any (max_tokens, a system prompt, tools; every Messages request) is in another scope, so explain it
with `--request` (the JSON body as sent, or @FILE) and `--api` for a Responses or Messages body.
Output is JSON on stdout; exit status 1 on errors (one line on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

import structlog

from semrouter.cache.config import CacheConfig
from semrouter.cache.build import make_backend
from semrouter.cache.semantic import SemanticCache


DEFAULT_CONFIG = "config/semrouter.yaml"  # as `semrouter classify` and `semrouter serve`


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("cache", help="inspect and manage the semantic cache")
    sub = p.add_subparsers(dest="cache_cmd", required=True)

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_)
        where = c.add_mutually_exclusive_group()
        where.add_argument("--config", default=DEFAULT_CONFIG,
                           help=f"router configuration YAML (opens the backend in-process; default {DEFAULT_CONFIG})")
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
    ex = cmd("explain", "why a prompt would hit or miss: candidates, cosine, verifier score, veto, verdict")
    ex.add_argument("prompt", nargs="?", default="", help="the prompt (or give --request)")
    ex.add_argument("--request", dest="request_json", default="",
                    help="a whole request body as sent (JSON, or @FILE): its conversation and parameters set the scope")
    ex.add_argument("--api", default="chat", choices=("chat", "responses", "messages"),
                    help="the API --request is a body of (default chat)")
    ex.add_argument("--tenant", default="", help="the tenant label as `cache list` shows it (empty = anonymous)")
    ex.add_argument("--model", default="", help="the requested model (empty = the first auto model name)")
    ex.add_argument("--category", default="", help="apply this category's threshold")


def run(args: argparse.Namespace) -> int:
    # stdout carries the JSON answer only: log lines go to stderr, whatever configured structlog before
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.__stderr__))
    if not args.router:
        # pymilvus sets its loggers' levels when it is imported: import it first, then quiet them (their tracebacks
        # would bury the one-line message; a WARNING about client-side timestamps came with every command)
        try:
            import pymilvus  # noqa: F401
        except ImportError:
            pass
    for name in ("pymilvus", "milvus_lite"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        out = asyncio.run(_run(args))
    except Exception as e:
        print(f"semrouter cache {args.cache_cmd}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    return 0


async def _remote(args: argparse.Namespace) -> Any:
    """The commands through the router's admin API (needed while it holds a Milvus Lite file)."""
    import os

    from semrouter.admin.client import TOKEN_ENV, AdminClient

    async with AdminClient(args.router, token=os.environ.get(TOKEN_ENV) or None) as c:
        match args.cache_cmd:
            case "stats":
                return await c.cache_stats()
            case "list":
                return (await c.cache_list(args.tenant or "", args.model or "", args.limit))["entries"]
            case "inspect":
                return await c.cache_inspect(args.id)
            case "delete":
                return await c.cache_delete(args.entry_id or "", args.tenant or "", args.model or "")
            case "clear":
                return await c.cache_clear()
            case "explain":
                return await c.cache_explain(args.prompt, args.tenant, args.model, args.category, args.api,
                                             args.request_json)
    raise ValueError(f"unknown command {args.cache_cmd}")


def held_by_another_process(uri: str) -> bool:
    """Whether a Milvus Lite data directory is open in another process: another PID holds milvus_lite's
    advisory flock on its `LOCK` file (Linux /proc/locks; this process's own hold does not count, since
    pymilvus shares one embedded instance per process). False when there is no directory yet."""
    import os
    from pathlib import Path

    lock = Path(uri).expanduser() / "LOCK"
    try:
        st = lock.stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return False
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table.splitlines():
        f = line.split()
        if len(f) >= 6 and f[1] == "FLOCK" and f[5] == ident and f[4] != str(os.getpid()):
            return True
    return False


async def _open(cfg: CacheConfig, embed: Any, with_learned: bool = False) -> SemanticCache:
    """The configured cache, opened in this process. `with_learned`: load the learned verifier even without an
    encoder, so `stats` reports the verifier the router runs (not the rules fallback of a process that has none)."""
    if cfg.backend == "milvus" and cfg.milvus.is_local and held_by_another_process(cfg.milvus.uri):
        raise RuntimeError(f"{cfg.milvus.uri} is open in another process (a running router?); "
                           "use --router HOST:PORT instead of --config")
    backend = make_backend(cfg)
    try:
        await backend.open()
    except Exception as e:
        raise RuntimeError(f"cache backend {cfg.backend} is not reachable: {e}") from None
    learned = None
    if with_learned and embed is None:
        from semrouter.cache.build import load_learned
        from semrouter.cache.verify import Verifier

        learned = await asyncio.to_thread(load_learned, cfg, Verifier())
    return await SemanticCache.create(cfg, embed, backend=backend, maintenance=False, opened=True, learned=learned)


async def _run(args: argparse.Namespace) -> Any:
    from semrouter.admin import convert
    from semrouter.config import load_config

    if args.cache_cmd == "clear" and not args.yes:
        raise ValueError("refusing to clear without --yes")
    if args.cache_cmd == "delete" and not (args.entry_id or args.tenant or args.model):
        raise ValueError("give --id, --tenant or --model")
    if args.cache_cmd == "explain":
        if args.request_json.startswith("@"):
            with open(args.request_json[1:], encoding="utf-8") as f:
                args.request_json = f.read()
        if not args.prompt.strip() and not args.request_json.strip():
            raise ValueError("give a prompt or --request")
    if args.router:
        return await _remote(args)

    full = load_config(args.config)
    cfg = full.cache
    analyzer = None
    if args.cache_cmd == "explain":
        from semrouter.signals.onnx.analyzer import OnnxAnalyzer

        analyzer = await OnnxAnalyzer.create(full.signals, full.categories)
    cache = await _open(cfg, analyzer.embed if analyzer is not None else None, with_learned=args.cache_cmd == "stats")
    try:
        match args.cache_cmd:
            case "stats":
                return convert.to_dict(convert.cache_stats_response({"enabled": cfg.enabled, **await cache.stats()}))
            case "list":
                return [convert.to_dict(convert.cache_entry(e))
                        for e in await cache.list_entries(args.tenant, args.model, args.limit)]
            case "inspect":
                found = await cache.inspect(args.id)
                if found is None:
                    raise LookupError(f"no entry {args.id!r}")
                return convert.to_dict(convert.cache_entry(found))
            case "delete":
                return {"deleted": await cache.delete(args.entry_id, args.tenant, args.model)}
            case "clear":
                return {"deleted": await cache.clear()}
            case "explain":
                return convert.to_dict(convert.cache_explain_response(await _explain(full, cache, args)))
    finally:
        await cache.close()
        if analyzer is not None:
            await analyzer.close()
    raise ValueError(f"unknown command {args.cache_cmd}")


async def _explain(full: Any, cache: SemanticCache, args: argparse.Namespace) -> dict[str, Any]:
    from semrouter.request.apis import explain_request

    req = explain_request(args.prompt, args.model or full.routing.auto_model_names[0], args.api, args.request_json,
                          full.server.max_body_bytes)
    from semrouter.decision.needs import policy_fingerprints
    from semrouter.runtime import policy_model_files

    key = cache.key_for(req, {}, tenant=args.tenant or None,  # a label as `cache list` shows it
                        policy=policy_fingerprints(full, policy_model_files(full)).for_request(full, req.model))
    if key is None:
        raise ValueError("this request would not use the cache (opt-out rules)")
    return await cache.explain(key, args.category or None)
