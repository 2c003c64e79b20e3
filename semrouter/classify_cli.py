"""`semrouter classify`: run the signals and the decision engine in-process on text.

    semrouter classify "How do I integrate x^2?"         # human-readable summary
    echo '{"text": "..."}' | semrouter classify --jsonl   # one JSON line per input line
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

DEFAULT_CONFIG = "config/semrouter.yaml"


def add_parser(subparsers: Any) -> None:
    """Register the `classify` subcommand on the top-level CLI."""
    p = subparsers.add_parser("classify", help="classify text with the ONNX signals and show the routing decision")
    p.add_argument("text", nargs="?", metavar="TEXT", help="text to classify (omit with --jsonl)")
    p.add_argument("--jsonl", action="store_true", help='read {"text": ...} lines on stdin, write JSON lines')
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.jsonl and not args.text:
        print("classify: give TEXT or --jsonl", file=sys.stderr)
        return 2
    return asyncio.run(_main(args))


def _result(cfg: Any, keywords: Any, text: str, analysis: Any) -> dict[str, Any]:
    from semrouter.decision.engine import decide

    vote = keywords.evaluate(text) if keywords is not None else None
    decision = decide(cfg, cfg.routing.auto_model_names[0], vote, analysis)
    try:
        from semrouter.decision.safety import jailbreak_blocked

        blocked = jailbreak_blocked(cfg, analysis, decision.category)
    except ImportError:  # pragma: no cover - safety module is optional
        blocked = False
    probs = analysis.category_probs
    top = max(probs, key=probs.__getitem__) if probs else None
    category = decision.category or top
    confidence = decision.confidence if decision.category else (probs.get(top) if top else None)
    return {
        "category": category,
        "confidence": None if confidence is None else round(float(confidence), 4),
        "category_source": (vote.source if vote is not None and decision.category == vote.category else
                            ("classifier" if decision.category else "none")),
        "jailbreak": None if analysis.jailbreak is None else round(float(analysis.jailbreak), 4),
        "blocked": bool(blocked),
        "pii": [{"type": e.type, "start": e.start, "end": e.end, "value": e.value} for e in analysis.pii],
        "model": None if decision.refusal is not None else decision.model,
        "refusal": None if decision.refusal is None else decision.refusal.code,
        "reason": decision.reason,
        "complexity": None if analysis.complexity is None else round(float(analysis.complexity), 4),
        "errors": list(analysis.errors),
    }


async def _main(args: argparse.Namespace) -> int:
    from semrouter.config import ConfigError, load_config
    from semrouter.signals.keywords import KeywordSignal
    from semrouter.signals.onnx.analyzer import OnnxAnalyzer
    from semrouter.signals.onnx.manifest import ModelDirError

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    keywords = KeywordSignal(cfg.keyword_rules) if cfg.keyword_rules else None
    scfg = cfg.signals.model_copy(update={"enabled": True})
    try:
        analyzer = await OnnxAnalyzer.create(scfg, cfg.categories)
    except ModelDirError as e:
        print(f"classify: {e}", file=sys.stderr)
        return 2
    try:
        if args.jsonl:
            for line in sys.stdin:
                if not line.strip():
                    continue
                text = str(json.loads(line).get("text", ""))
                res = _result(cfg, keywords, text, await analyzer.analyze(text))
                sys.stdout.write(json.dumps(res) + "\n")
            return 0
        await analyzer.analyze(args.text)  # warm-up: first run allocates
        t = time.perf_counter()
        analysis = await analyzer.analyze(args.text)
        ms = (time.perf_counter() - t) * 1e3
        r = _result(cfg, keywords, args.text, analysis)
        conf = f" ({r['confidence']:.2f}, {r['category_source']})" if r["confidence"] is not None else ""
        print(f"category:   {r['category']}{conf}")
        jb = "n/a" if r["jailbreak"] is None else f"{r['jailbreak']:.3f}"
        print(f"jailbreak:  {jb}{'  BLOCKED' if r['blocked'] else ''}")
        found = ", ".join(f"{p['type']}={p['value']!r}" for p in r["pii"]) or "none"
        print(f"pii:        {found}")
        cx = "n/a" if r["complexity"] is None else f"{r['complexity']:.3f}"
        print(f"complexity: {cx}")
        print(f"model:      {r['model'] or 'refused: ' + str(r['refusal'])} ({r['reason']})")
        timing = ", ".join(f"{k} {v:.2f}" for k, v in analysis.timings_ms.items() if k != "batch_size")
        print(f"latency:    {ms:.2f} ms ({timing})")
        if r["errors"]:
            print(f"errors:     {', '.join(r['errors'])}")
        return 0
    finally:
        await analyzer.close()
