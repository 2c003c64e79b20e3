"""Whether a jailbreak score blocks a request (global setting, per-category overrides)."""

from __future__ import annotations

from semrouter.config.schema import Config
from semrouter.signals.types import Analysis


def jailbreak_blocked(cfg: Config, analysis: Analysis | None, category: str | None) -> bool:
    if analysis is None or analysis.jailbreak is None:
        return False
    jb = getattr(cfg.signals, "jailbreak", None)
    if jb is None or not jb.enabled or not getattr(jb, "block", True):
        return False
    enabled, threshold = jb.enabled, jb.threshold
    override = (getattr(jb, "category_overrides", None) or {}).get(category or "")
    if override is not None:
        enabled = override.enabled
        threshold = override.threshold if override.threshold is not None else threshold
    return enabled and analysis.jailbreak >= threshold
