"""`semrouter classify`: every signal and the routing decision for a text, nothing sent upstream.

    semrouter classify "How do I integrate x^2?"          # human-readable summary
    echo '{"text": "..."}' | semrouter classify --jsonl    # one JSON line per input line
    semrouter classify --router 127.0.0.1:50052 "..."      # ask a running router (admin API port)

Without --router it runs in-process: it loads the config and the ONNX models itself (the cache is not
opened). With --router it calls the router's Classify RPC; PII values are not returned remotely.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

DEFAULT_CONFIG = "config/semrouter.yaml"
JSONL_KEYS = ("category", "confidence", "category_source", "language", "jailbreak", "blocked", "pii", "model",
              "complexity", "small_model_wrong", "reason")


def add_parser(subparsers: Any) -> None:
    """Register the `classify` subcommand on the top-level CLI."""
    p = subparsers.add_parser("classify", help="classify text with the ONNX signals and show the routing decision")
    p.add_argument("text", nargs="?", metavar="TEXT", help="text to classify (omit with --jsonl)")
    p.add_argument("--jsonl", action="store_true", help='read {"text": ...} lines on stdin, write JSON lines')
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")
    p.add_argument("--router", metavar="HOST:PORT", help="use a running router's admin API instead")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.jsonl and not args.text:
        print("classify: give TEXT or --jsonl", file=sys.stderr)
        return 2
    return asyncio.run(_main(args))


async def _in_process(config: str) -> AsyncIterator[Callable[[str], Awaitable[dict[str, Any]]]]:
    from semrouter.config import load_config
    from semrouter.decision.explain import explain
    from semrouter.runtime import Shared, build_runtime

    cfg = load_config(config)
    cfg = cfg.model_copy(update={"signals": cfg.signals.model_copy(update={"enabled": True}),
                                 "cache": cfg.cache.model_copy(update={"enabled": False})})
    rt = await build_runtime(cfg, Shared())
    try:
        yield lambda text: explain(rt, text)
    finally:
        await rt.close()


async def _remote(target: str) -> AsyncIterator[Callable[[str], Awaitable[dict[str, Any]]]]:
    import os

    from semrouter.admin.client import TOKEN_ENV, AdminClient

    async with AdminClient(target, token=os.environ.get(TOKEN_ENV) or None) as client:
        async def classify(text: str) -> dict[str, Any]:
            r = await client.classify(text)
            return {**r, "jailbreak": r.get("jailbreak_score"), "model": r.get("model") or None,
                    "category": r.get("category") or None}

        yield classify


async def _main(args: argparse.Namespace) -> int:
    from semrouter.config import ConfigError
    from semrouter.signals.onnx.manifest import ModelDirError

    source = _remote(args.router) if args.router else _in_process(args.config)
    try:
        classify = await source.__anext__()
    except (ConfigError, ModelDirError) as e:
        print(f"classify: {e}", file=sys.stderr)
        return 2
    try:
        if args.jsonl:
            for line in sys.stdin:
                if line.strip():
                    r = await classify(str(json.loads(line).get("text", "")))
                    out = {k: r.get(k) for k in JSONL_KEYS}
                    out["pii"] = [{k: p.get(k) for k in ("type", "start", "end", "value")} for p in r.get("pii") or []]
                    sys.stdout.write(json.dumps(out) + "\n")
            return 0
        await classify(args.text)  # warm-up: the first run allocates
        _print(await classify(args.text))
        return 0
    finally:
        await source.aclose()


def _print(r: dict[str, Any]) -> None:
    conf = f"{r['confidence']:.2f}" if r.get("confidence") is not None else ""
    # where the category came from: classifier, multilingual (the e5 head, for signals.multilingual.languages),
    # keyword:<rule>, language (a language rule's category)
    about = ", ".join(x for x in (conf, r.get("category_source") or "") if x)
    print(f"category:   {r.get('category') or 'none'}{f' ({about})' if about else ''}")
    print(f"language:   {r.get('language') or 'n/a'}")
    jb = "n/a" if r.get("jailbreak") is None else f"{r['jailbreak']:.3f}"
    kind = f" [{r['jailbreak_type']}]" if r.get("jailbreak_type") else ""
    print(f"jailbreak:  {jb}{kind}{'  BLOCKED' if r.get('blocked') else ''}")
    if r.get("safety"):
        print("safety:     " + ", ".join(f"{k}={v:.3f}" for k, v in r["safety"].items()))
    found = ", ".join(f"{p['type']}={p.get('value', '')!r}" for p in r.get("pii") or []) or "none"
    print(f"pii:        {found}")
    wrong = "" if r.get("small_model_wrong") is None else f" (small model wrong: {r['small_model_wrong']:.2f})"
    print(f"complexity: {'n/a' if r.get('complexity') is None else format(r['complexity'], '.3f')}{wrong}")
    print(f"model:      {r.get('model') or 'refused'} ({r.get('reason')}, reasoning "
          f"{'on' if r.get('reasoning') else 'off'})")
    timing = ", ".join(f"{k} {v:.2f}" for k, v in (r.get("timings_ms") or {}).items() if k != "batch_size")
    print(f"latency:    {r.get('latency_ms', 0):.2f} ms ({timing})")
