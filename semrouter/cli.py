"""`semrouter` command line: serve, validate-config, demo-upstream, classify, cache."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from semrouter.config.schema import Config

DEFAULT_CONFIG = "config/semrouter.yaml"
# Subcommands that live next to the code they drive; each module has add_parser(subparsers).
_PLUGGED = ("semrouter.classify_cli", "semrouter.cache.cli")


def _configure_logging(fmt: str, level: str) -> None:
    from semrouter.telemetry.logging import configure_logging

    configure_logging(fmt, level)


def _load(path: str) -> Config | None:
    """The validated config, or None after printing what is wrong."""
    from semrouter.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    from semrouter.cache.types import CacheSchemaError
    from semrouter.server.app import serve
    from semrouter.signals.onnx.manifest import ModelDirError

    cfg = _load(args.config)
    if cfg is None:
        return 2
    _configure_logging(args.log_format or cfg.logging.format, cfg.logging.level)
    try:
        asyncio.run(serve(cfg, Path(args.config)))
    except (ModelDirError, CacheSchemaError, OSError, ValueError) as e:  # start-up refused: say why, exit 2
        print(f"semrouter serve: {e}", file=sys.stderr)
        return 2
    return 0


def _validate(args: argparse.Namespace) -> int:
    cfg = _load(args.file)
    if cfg is None:
        return 2
    print(f"{args.file}: ok ({len(cfg.models)} models, {len(cfg.categories)} categories, "
          f"{len(cfg.keyword_rules)} keyword rules)")
    return 0


def _demo_upstream(args: argparse.Namespace) -> int:
    from semrouter.upstream.demo import serve

    try:
        asyncio.run(serve(args.model, args.port, args.host, args.delay_ms))
    except KeyboardInterrupt:
        pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="semrouter", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the ext_proc router")
    s.add_argument("--config", default=DEFAULT_CONFIG)
    s.add_argument("--log-format", choices=["json", "console"], default=None, help="override logging.format")
    s.set_defaults(func=_serve)

    v = sub.add_parser("validate-config", help="check a config file and explain what is wrong")
    v.add_argument("file")
    v.set_defaults(func=_validate)

    d = sub.add_parser("demo-upstream", help="an OpenAI-compatible stand-in for a vLLM server")
    d.add_argument("--port", type=int, required=True)
    d.add_argument("--model", required=True)
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--delay-ms", type=float, default=0.0)
    d.set_defaults(func=_demo_upstream)

    for name in _PLUGGED:
        importlib.import_module(name).add_parser(sub)
    return p


class _Stderr:
    """Whatever sys.stderr is at write time (tests swap it; a bound stream could be closed)."""

    def write(self, s: str) -> int:
        return sys.stderr.write(s)

    def flush(self) -> None:
        sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "serve":  # tools print results on stdout; their logs go to stderr
        from semrouter.telemetry.logging import configure_logging

        configure_logging("console", "warning", stream=_Stderr())
    return int(args.func(args) or 0)
