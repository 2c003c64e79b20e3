"""Whether a jailbreak score blocks a request (global setting, per-category overrides)."""

from __future__ import annotations

from semrouter.config.schema import Config
from semrouter.signals.types import Analysis


def jailbreak_blocked(cfg: Config, analysis: Analysis | None, category: str | None) -> bool:
    if analysis is None or analysis.jailbreak is None:
        return False
    jb = cfg.signals.jailbreak
    if not jb.block:
        return False
    threshold = jb.threshold_for(category)
    return threshold is not None and analysis.jailbreak >= threshold
