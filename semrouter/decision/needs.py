"""Which model-based signals one request needs (pure): all of them for `auto`, fewer for a named model.

A request that names its model (`"model": "llama-3.1-8b"`) is not routed, so the category and complexity
heads decide nothing for it. It still needs:

- `jailbreak` when `signals.jailbreak` is enabled and blocks, and some label's action is `block` globally or in
  a category override (the guard applies to every request; report-only labels do not need it for a named model);
- `pii` when PII detection is enabled and either that model's `pii_policy` restricts types (the request may
  have to be refused) or its answer may be cached with `cache.skip_pii` on (answers to prompts with PII are
  not stored; a request that opts out of the cache or is not cacheable does not need it for that);
- `category` when something reads the category of a named-model request: per-category jailbreak
  overrides, or per-category cache thresholds / disabled categories;
- never `complexity`.

`routing.explicit_model_signals: all` runs every signal for named models too (the answer headers then report
category and complexity as before). Unknown model names get every signal (they are refused anyway,
after the jailbreak guard).
"""

from __future__ import annotations

import hashlib
import json

from semrouter.config.schema import Config
from semrouter.decision.engine import is_auto
from semrouter.signals.types import SIGNALS

ALL = SIGNALS  # every model-based signal (defined once, beside the Analyzer protocol)


def signals_needed(cfg: Config, requested_model: str, cacheable: bool = True) -> frozenset[str]:
    """The subset of ALL that a request for `requested_model` needs under `cfg`; `cacheable`: whether its
    answer may be stored in the cache (it has a cache key)."""
    if is_auto(cfg, requested_model) or cfg.routing.explicit_model_signals == "all":
        return ALL
    model = cfg.model(requested_model)
    if model is None:
        return ALL
    s = cfg.signals
    need: set[str] = set()
    if s.jailbreak.enabled and s.jailbreak.block and _may_block(cfg):
        need.add("jailbreak")
        if s.jailbreak.category_overrides:
            need.add("category")
    cached = cacheable and cfg.cache.enabled
    if s.pii.enabled and (not model.pii_policy.allow_by_default or (cached and cfg.cache.skip_pii)):
        need.add("pii")
    if cached and (cfg.cache.category_thresholds or cfg.cache.disabled_categories):
        need.add("category")
    return frozenset(need)


def policy_signals(cfg: Config, requested_model: str) -> frozenset[str]:
    """The signals a *blocking* policy reads for a request for `requested_model` (a subset of ALL): `jailbreak`
    when some safety label's action is `block`; `pii` when PII detection is on and the model the request can
    reach restricts types (a named model's `pii_policy`; for `auto` or an unknown name, any model's). Without
    them the request would go through unchecked, so server.signals_unavailable decides (server/request_phase.py)."""
    s = cfg.signals
    out: set[str] = set()
    if not s.enabled:
        return frozenset()
    if s.jailbreak.enabled and s.jailbreak.block and _may_block(cfg):
        out.add("jailbreak")
    model = None if is_auto(cfg, requested_model) else cfg.model(requested_model)
    reachable = [model] if model is not None else list(cfg.models)
    if s.pii.enabled and any(not m.pii_policy.allow_by_default for m in reachable):
        out.add("pii")
    return frozenset(out)


def _may_block(cfg: Config) -> bool:
    """Whether any safety label refuses anything: its global action or a category override's is `block`."""
    jb = cfg.signals.jailbreak
    policies = [jb.policy_for(None), *(jb.policy_for(c) for c in jb.category_overrides)]
    return any(pol.action == "block" for pols in policies for pol in pols.values())


def policy_fingerprint(cfg: Config) -> str:
    """16 hex digits of sha256 over every setting that decides whether a request is answered at all: the safety
    guard (`signals.jailbreak`: labels, thresholds, actions, per-category overrides), PII detection
    (`signals.pii`) and each model's `pii_policy`. Part of the cache scope (cache/keys.py): an answer is served
    from the cache only under the policies it passed when it was stored, so a stricter guard after a reload is
    not bypassed by answers cached before it (the exact stage answers before any signal runs)."""
    doc = {"jailbreak": cfg.signals.jailbreak.model_dump(mode="json"), "pii": cfg.signals.pii.model_dump(mode="json"),
           "models": {m.name: m.pii_policy.model_dump(mode="json") for m in cfg.models}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]
