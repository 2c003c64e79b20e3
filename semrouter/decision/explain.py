"""Classify one text the way an `auto` request would be: every signal and the decision, nothing sent."""

from __future__ import annotations

import time
from typing import Any

from semrouter.decision.engine import category_vote, decide
from semrouter.decision.safety import safety_verdict
from semrouter.runtime import Runtime
from semrouter.signals.types import language_of


async def explain(rt: Runtime, text: str) -> dict[str, Any]:
    """All signals for `text` as the last user message of an `auto` request, and the resulting choice."""
    t0 = time.perf_counter()
    cfg = rt.config
    keyword = rt.keywords.evaluate(text)
    analysis = await rt.analyzer.analyze(text) if rt.analyzer is not None else None
    language = await language_of(rt.language, text, analysis)  # language rules and the gate, as a request gets them
    vote = category_vote(cfg, keyword, analysis, language)
    category = vote.category if vote else None
    verdict = safety_verdict(cfg, analysis, category)
    blocked = verdict.blocked_by is not None
    d = decide(cfg, cfg.routing.auto_model_names[0], keyword, analysis, language)
    probs = dict(analysis.category_probs) if analysis else {}
    top = max(probs.items(), key=lambda kv: kv[1]) if probs else (None, None)
    return {
        "category": category if category is not None else top[0],
        "confidence": vote.confidence if vote else top[1],
        "category_probs": probs,
        "category_source": vote.source if vote else None,
        "jailbreak": analysis.jailbreak if analysis else None,
        "safety": dict(analysis.safety) if analysis else {},
        "jailbreak_type": verdict.blocked_by or (verdict.reported[0][0] if verdict.reported else None),
        "blocked": blocked or d.refusal is not None,
        "block_reason": "jailbreak" if blocked else (d.refusal.code if d.refusal else ""),
        "pii": [{"type": e.type, "start": e.start, "end": e.end, "value": e.value, "score": e.score}
                for e in (analysis.pii if analysis else ())],
        "language": language,
        "complexity": analysis.complexity if analysis else None,
        "small_model_wrong": analysis.small_model_wrong if analysis else None,
        "model": None if blocked or d.refusal else d.model,
        "reason": "jailbreak" if blocked else d.reason,
        "reasoning": d.use_reasoning,
        "timings_ms": dict(analysis.timings_ms) if analysis else {},
        "signal_errors": list(analysis.errors) if analysis else [],
        "latency_ms": (time.perf_counter() - t0) * 1000,
    }
