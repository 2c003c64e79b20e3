"""The decision engine: signals + config → which model serves the request, and why.

Pure: no I/O, no clocks, no randomness. Order of precedence for `auto` requests:
0. a prompt in a language the classifier is not trusted on, whose multilingual category (`signals.multilingual`,
   only for its `languages`) is at least `signals.multilingual.threshold` sure, routes as that category
   (reason `multilingual`; a keyword rule that matches still comes first);
1. otherwise a prompt in a language the classifier is not trusted on (`language.classifier_languages`) takes the
   first `language.rules` entry naming its language: a preferred model, or a category to route as;
2. a keyword rule that matches (first in config order) names the category;
3. otherwise the classifier's top category when its probability ≥ `signals.classifier.threshold`, and only for
   prompts in a `language.classifier_languages` language (the shipped heads are English-only);
4. otherwise no category: `routing.default_model` (the request always gets an upstream).
Within a category, candidates are its `model_scores`. `routing.quality_target` 1 always takes the best-scoring
candidate and 0 the cheapest; in between, the complexity score decides between the cheapest and the best
(without a complexity score, the best). PII
policy then skips candidates that may not see what was found; if none may, the request is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from semrouter.config.schema import Category, Config, Model, ModelScore, SystemPrompt
from semrouter.signals.pii.policy import violations
from semrouter.signals.types import Analysis, CategoryVote, PIIEntity


@dataclass(frozen=True, slots=True)
class Refusal:
    """The router answers the request itself instead of routing it."""

    status: int
    code: str  # e.g. "pii_not_allowed", "model_not_found"
    message: str
    types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    model: str
    category: str | None
    reason: str  # explicit | keyword:<rule> | language | classifier | multilingual | default | complexity:<small|large> | cheapest | pii_reroute
    confidence: float | None = None
    use_reasoning: bool = False
    complexity: float | None = None
    system_prompt: SystemPrompt | None = None
    refusal: Refusal | None = None
    source_model: str | None = None  # what the client asked for (for routing-modification metrics)
    # The classifier's top label when it was not confident enough to route on: reported in
    # x-vsr-selected-category (with x-semrouter-reason telling that the default model was used), never routed on.
    category_guess: str | None = None
    language: str | None = None  # ISO 639-1 code from the language signal (x-vsr-language), None when it is off

    @property
    def reported_category(self) -> str | None:
        return self.category or self.category_guess


def category_vote(cfg: Config, keyword: CategoryVote | None, analysis: Analysis | None,
                  language: str | None = None) -> CategoryVote | None:
    """The category the request belongs to, or None when no signal is confident. The classifier votes only on
    prompts in a language it is trusted on (`language`: ISO 639-1 code, None = not detected)."""
    if keyword is not None and cfg.category(keyword.category) is not None:
        return keyword
    if not cfg.language.trusted(language):
        return multilingual_vote(cfg, analysis, language)
    if analysis is None or not analysis.category_probs:
        return None
    label, prob = max(analysis.category_probs.items(), key=lambda kv: kv[1])
    if prob >= cfg.signals.classifier.threshold and cfg.category(label) is not None:
        return CategoryVote(category=label, confidence=float(prob), source="classifier")
    return None


def multilingual_vote(cfg: Config, analysis: Analysis | None, language: str | None) -> CategoryVote | None:
    """The multilingual category of a prompt in a language the classifier is not trusted on, when its top
    probability is at least `signals.multilingual.threshold` and the category is configured; else None."""
    if analysis is None or not analysis.multilingual_probs or cfg.language.trusted(language):
        return None
    label, prob = max(analysis.multilingual_probs.items(), key=lambda kv: kv[1])
    if prob >= cfg.signals.multilingual.threshold and cfg.category(label) is not None:
        return CategoryVote(category=label, confidence=float(prob), source="multilingual")
    return None


def category_guess(cfg: Config, analysis: Analysis | None, language: str | None = None) -> str | None:
    """The classifier's top configured label, whatever its confidence (None when it did not run, or on a language
    it is not trusted on: a guess there is mostly wrong)."""
    if analysis is None or not analysis.category_probs or not cfg.language.trusted(language):
        return None
    label = max(analysis.category_probs.items(), key=lambda kv: kv[1])[0]
    return label if cfg.category(label) is not None else None


def is_auto(cfg: Config, requested: str) -> bool:
    """Whether the client's `model` asks the router to decide: one of `routing.auto_model_names` (any case)."""
    return requested in cfg.routing.auto_model_names or requested.lower() in {
        n.lower() for n in cfg.routing.auto_model_names
    }


def _cost(m: Model) -> float:
    return m.pricing.prompt_per_1m + m.pricing.completion_per_1m


def wants_large(complexity: float, quality_target: float) -> bool:
    """The quality-target knob: 0 → always the cheapest candidate, 1 → always the best."""
    if quality_target <= 0.0:
        return False
    if quality_target >= 1.0:
        return True
    return complexity >= 1.0 - quality_target


def _order_candidates(cfg: Config, cat: Category, complexity: float | None) -> tuple[list[ModelScore], str]:
    """Candidates in preference order, and the reason for the first one."""
    by_score = sorted(cat.model_scores, key=lambda s: (-s.score, _cost(cfg.model(s.model))))  # type: ignore[arg-type]
    best = by_score[0]
    cheapest = min(by_score, key=lambda s: (_cost(cfg.model(s.model)), -s.score))  # type: ignore[arg-type]
    target = cfg.routing.quality_target
    if cheapest.model == best.model or target >= 1.0:
        return by_score, "category"  # the best candidate; complexity does not matter
    rest = [s for s in by_score if s.model != cheapest.model]
    if target <= 0.0:
        return [cheapest, *rest], "cheapest"
    if complexity is None:
        return by_score, "category"
    if wants_large(complexity, target):
        return by_score, "complexity:large"
    return [cheapest, *rest], "complexity:small"


def _hard(cat: Category | None, complexity: float | None) -> bool:
    """A complex request in a category that switches reasoning on above a complexity level."""
    return (cat is not None and cat.reasoning_above_complexity is not None and complexity is not None
            and complexity >= cat.reasoning_above_complexity)


def pii_violations(model: Model, found: Sequence[PIIEntity]) -> set[str]:
    """Detected PII types that `model` may not receive (empty set = allowed)."""
    return violations(model.pii_policy.allow_by_default, model.pii_policy.allowed_types, found)


def decide(
    cfg: Config,
    requested_model: str,
    keyword: CategoryVote | None = None,
    analysis: Analysis | None = None,
    language: str | None = None,
) -> Decision:
    """Choose the model for one request. Never raises for a validated config. `language`: the prompt's ISO 639-1
    code from the language signal (None when it is off)."""
    pii = analysis.pii if analysis is not None else ()
    complexity = analysis.complexity if analysis is not None else None
    if not is_auto(cfg, requested_model):
        model = cfg.model(requested_model)
        if model is None:
            known = ", ".join([*cfg.routing.auto_model_names[:1], *(m.name for m in cfg.models)])
            return Decision(
                model=requested_model, category=None, reason="unknown_model", source_model=requested_model,
                refusal=Refusal(404, "model_not_found",
                                f"The model '{requested_model}' does not exist; available: {known}"),
            )
        bad = pii_violations(model, pii)
        vote = category_vote(cfg, keyword, analysis, language)
        if bad:
            return Decision(
                model=model.name, category=vote.category if vote else None, reason="pii_policy",
                source_model=requested_model, language=language,
                refusal=Refusal(403, "pii_not_allowed",
                                f"The request contains {', '.join(sorted(bad))}, which model "
                                f"'{model.name}' may not receive", tuple(sorted(bad))),
            )
        return Decision(model=model.name, category=vote.category if vote else None, reason="explicit",
                        confidence=vote.confidence if vote else None, complexity=complexity,
                        source_model=requested_model, language=language)

    ml = multilingual_vote(cfg, analysis, language)  # a confident multilingual category comes before the rules
    rule = None if ml is not None else cfg.language.rule_for(language)
    vote = None if rule is not None else category_vote(cfg, keyword, analysis, language)
    cat = cfg.category(rule.category) if rule is not None and rule.category else (
        cfg.category(vote.category) if vote else None)
    guess = category_guess(cfg, analysis, language) if cat is None and rule is None else None
    candidates: list[ModelScore]
    if rule is not None and rule.model is not None:
        candidates, reason = [ModelScore(model=rule.model, score=1.0)], "language"
    elif cat is None:
        candidates, reason = [ModelScore(model=cfg.routing.default_model, score=1.0)], "default"
    else:
        candidates, reason = _order_candidates(cfg, cat, complexity)
        if rule is not None:
            reason = "language"
        elif vote is not None:
            reason = vote.source.split(":", 1)[0] if reason == "category" else reason  # keyword | classifier
            if vote.source.startswith("keyword:") and reason == "keyword":
                reason = vote.source
    default = cfg.routing.default_model
    if all(c.model != default for c in candidates):
        candidates.append(ModelScore(model=default, score=0.0))  # last resort before refusing on PII

    violated: set[str] = set()
    for i, cand in enumerate(candidates):
        model = cfg.model(cand.model)
        assert model is not None  # guaranteed by config validation
        bad = pii_violations(model, pii)
        if bad:
            violated |= bad
            continue
        return Decision(
            model=model.name,
            category=cat.name if cat else None,
            reason=reason if i == 0 else "pii_reroute",
            confidence=vote.confidence if vote else None,
            use_reasoning=model.reasoning_family is not None and (cand.use_reasoning or _hard(cat, complexity)),
            complexity=complexity,
            system_prompt=cat.system_prompt if cat else None,
            source_model=requested_model,
            category_guess=guess,
            language=language,
        )
    return Decision(
        model=candidates[0].model, category=cat.name if cat else None, reason="pii_policy",
        source_model=requested_model, category_guess=guess, language=language,
        refusal=Refusal(403, "pii_not_allowed",
                        f"The request contains {', '.join(sorted(violated))}, which no eligible model may receive",
                        tuple(sorted(violated))),
    )
