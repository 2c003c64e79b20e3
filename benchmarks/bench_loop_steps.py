"""Synchronous CPU steps on the request path, in process: p50/p99 per step at ordinary and hostile sizes.

Every step here runs on the router's event loop (server/request_phase.py) unless noted, so its time is time no
other request's gRPC message is handled. Prompts are written for this script. Usage:

    .venv/bin/python benchmarks/bench_loop_steps.py [--config config/semrouter.yaml] [--reps 200]

Prints one row per (step, size): p50 / p99 in ms. Loads the language detector and the PII patterns only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semrouter.cache import keys  # noqa: E402
from semrouter.config.load import load_config  # noqa: E402
from semrouter.request import apis  # noqa: E402
from semrouter.request.window import analysis_window  # noqa: E402
from semrouter.signals.keywords import KeywordSignal  # noqa: E402
from semrouter.signals.language import LanguageDetector  # noqa: E402

SHORT_MATH = ["what is 7 times 8", "solve x + 3 = 10", "integral of x^2 dx", "is 91 prime", "2^10 - 1 = ?",
              "sqrt 144 plus 5", "derivative of sin x", "lcm of 4 and 6"]
ENGLISH = ["Could you explain how a hash map handles collisions when two keys land in the same bucket?",
           "Write me a short note thanking my neighbour for watering the plants while I was away."]
SPANISH = ["¿Puedes explicarme cómo funciona la fotosíntesis en las hojas de los árboles?"]
FILLER = "The quick summary of our quarterly numbers follows in the attached table, row by row. "


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def timed(fn: Callable[[], object], reps: int) -> tuple[float, float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(out), pct(out, 0.99)


def body_of(chars: int, turns: int = 1) -> bytes:
    msgs = [{"role": "system", "content": "You are terse."}]
    per = max(1, chars // turns)
    for i in range(turns):
        msgs.append({"role": "user" if i % 2 == 0 else "assistant", "content": (FILLER * (per // len(FILLER) + 1))[:per]})
    msgs.append({"role": "user", "content": "what is 7 times 8"})
    return json.dumps({"model": "auto", "messages": msgs}).encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/semrouter.yaml")
    ap.add_argument("--reps", type=int, default=200)
    a = ap.parse_args()
    cfg = load_config(a.config)
    rows: list[tuple[str, str, float, float]] = []

    lang = LanguageDetector(cfg.language)
    for label, texts in (("short math (two passes)", SHORT_MATH), ("English sentence", ENGLISH),
                         ("Spanish sentence", SPANISH), ("hostile 100 KB", [FILLER * 1200])):
        i = iter(range(10**9))
        rows.append(("language.detect", label, *timed(lambda: lang.detect(texts[next(i) % len(texts)]), a.reps)))

    kw = KeywordSignal(cfg.keyword_rules)
    for size in (1_000, 100_000, 4_000_000):
        raw = body_of(size, turns=max(1, size // 4000))
        reps = a.reps if size < 1_000_000 else 20
        rows.append(("apis.parse (json)", f"{len(raw) / 1e3:.0f} KB", *timed(
            lambda raw=raw: apis.parse("chat", raw, cfg.server.max_body_bytes), reps)))
        req = apis.parse("chat", raw, cfg.server.max_body_bytes)
        rows.append(("cache key (make_key)", f"{len(raw) / 1e3:.0f} KB", *timed(
            lambda req=req: keys.make_key(cfg.cache, req, {}, "t"), reps)))
        model = cfg.models[0]
        rows.append(("apis.rewrite (json)", f"{len(raw) / 1e3:.0f} KB", *timed(
            lambda req=req: apis.rewrite(req, model, None, None), reps)))
        whole = req.unclassified_text(cfg.routing.classify_text)
        rows.append(("analysis_window (whole req)", f"{len(raw) / 1e3:.0f} KB", *timed(
            lambda whole=whole: analysis_window(whole, cfg.server.analysis_head_chars,
                                                cfg.server.analysis_tail_chars), reps)))
        if kw is not None:
            text = analysis_window(req.text_for(cfg.routing.classify_text), cfg.server.analysis_head_chars,
                                   cfg.server.analysis_tail_chars).text
            rows.append(("keywords.evaluate", f"{len(raw) / 1e3:.0f} KB", *timed(lambda text=text: kw.evaluate(text),
                                                                                  reps)))
    try:
        from semrouter.signals.pii.detector import PIIDetector

        pii = PIIDetector(cfg.signals.pii, None)
        for size in (1_000, 100_000):
            text = analysis_window((FILLER + "call 555-0100 or mail a@b.example ") * (size // 120),
                                   cfg.server.analysis_head_chars, cfg.server.analysis_tail_chars).text
            rows.append(("PII patterns (whole request)", f"{size / 1e3:.0f} KB in, {len(text)} chars read",
                         *timed(lambda text=text: pii.detect(text, None, None), a.reps)))
    except Exception as e:  # noqa: BLE001
        print("PII patterns: not measured:", type(e).__name__, e)
    w = max(len(r[0]) for r in rows)
    for step, size, p50, p99 in rows:
        print(f"{step:<{w}}  {size:<28} p50 {p50:8.3f} ms  p99 {p99:8.3f} ms")


if __name__ == "__main__":
    main()
