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
from collections.abc import Mapping
from dataclasses import dataclass

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


# Model files whose change changes what the policies see (the encoder, the tokenizer, the safety and PII heads, the
# PII name lists and span check); the category head joins them when the guard has per-category overrides. Other
# heads change routing, not answers.
_POLICY_FILES = ("tokenizer.json", "jailbreak_head.onnx", "jailbreak_head.labels.json", "jailbreak_memory.onnx",
                 "jailbreak_memory.labels.json", "pii_head.onnx",
                 "pii_head.labels.json", "pii_names.json", "pii_person.json")
_CATEGORY_FILES = ("category_head.onnx", "category_head.labels.json")


@dataclass(frozen=True, slots=True)
class PolicyFingerprints:
    """The answer policies' fingerprint (16 hex digits) per requested model: part of the cache scope
    (cache/keys.py), so an answer is served from the cache only under the policies it passed when it was stored.
    Built once per runtime by `policy_fingerprints`."""

    by_model: Mapping[str, str]  # configured model name -> its requests' fingerprint
    auto: str  # an `auto` request (any model may answer it)
    unknown: str  # a name no model has: nothing was stored under it, nothing is served

    def for_request(self, cfg: Config, requested_model: str) -> str:
        """The fingerprint a request for `requested_model` (as the client sent it) is cached under."""
        if is_auto(cfg, requested_model):
            return self.auto
        return self.by_model.get(requested_model, self.unknown)


def policy_fingerprints(cfg: Config, model_files: Mapping[str, str] | None = None) -> PolicyFingerprints:
    """Fingerprints of every setting that decides whether a request is answered at all, and of what those
    settings read: the safety guard (`signals.jailbreak`: labels, thresholds, actions, per-category overrides), PII
    detection (`signals.pii`), whether the signals run at all and on what (`signals.enabled`, `precision`,
    `max_tokens`, `routing.classify_text`, `server.analysis_head_chars` / `analysis_tail_chars`), the model files
    they run (`model_files`: file name -> sha256 from the model directory's manifest.json, runtime.policy_model_files;
    a retrained safety head with stricter thresholds is a stricter policy) and the requested model's `pii_policy`
    (for `auto`: the set of distinct policies of all models). With per-category guard overrides, what decides the
    category (categories, keyword rules, classifier, language, the category head) joins them.

    Not in it: what does not decide whether a request is answered (endpoints, budgets, logging, ...), nor models
    other than the requested one, so adding a model with a policy that another model already has leaves the cache
    warm for every request. Pure: `model_files` is passed in."""
    files = model_files or {}
    jb = cfg.signals.jailbreak
    wanted = [*_POLICY_FILES, *(_CATEGORY_FILES if jb.category_overrides else ())]
    enc = "encoder.int8.onnx" if cfg.signals.precision == "int8" else "encoder.onnx"
    base: dict[str, object] = {
        "signals": {"enabled": cfg.signals.enabled, "precision": cfg.signals.precision,
                    "max_tokens": cfg.signals.max_tokens, "jailbreak": jb.model_dump(mode="json"),
                    "pii": cfg.signals.pii.model_dump(mode="json")},
        "reads": {"classify_text": cfg.routing.classify_text, "head": cfg.server.analysis_head_chars,
                  "tail": cfg.server.analysis_tail_chars},
        "files": {name: files.get(name, "") for name in (enc, *wanted)},
    }
    if jb.category_overrides:
        base["category"] = {"categories": [c.model_dump(mode="json") for c in cfg.categories],
                            "keywords": [k.model_dump(mode="json") for k in cfg.keyword_rules],
                            "classifier": cfg.signals.classifier.model_dump(mode="json"),
                            "language": cfg.language.model_dump(mode="json")}

    def digest(extra: object) -> str:
        doc = json.dumps({**base, "model": extra}, sort_keys=True, default=str)
        return hashlib.sha256(doc.encode()).hexdigest()[:16]

    policies = {m.name: m.pii_policy.model_dump(mode="json") for m in cfg.models}
    distinct = sorted({json.dumps(p, sort_keys=True) for p in policies.values()})
    return PolicyFingerprints(by_model={name: digest({"pii_policy": p}) for name, p in policies.items()},
                              auto=digest({"any_of": distinct}), unknown=digest("unknown"))
