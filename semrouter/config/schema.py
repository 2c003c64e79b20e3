"""The router's configuration schema (pydantic v2). Unknown keys are errors, so typos surface.

Cross-references (a category naming a model, the default model) are checked here so that a
config that validates can always be served.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from semrouter.cache.config import CacheConfig
from semrouter.signals.config import SignalsConfig
from semrouter.signals.language import LanguageConfig

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Strict):
    """One upstream serving a model (a vLLM replica, say)."""

    address: str = Field(min_length=1, description="host name or IP of the upstream")
    port: int = Field(ge=1, le=65535, description="TCP port")
    weight: int = Field(default=1, ge=1, le=1000, description="relative share among the model's endpoints")

    @property
    def hostport(self) -> str:
        return f"{self.address}:{self.port}"


class Pricing(_Strict):
    prompt_per_1m: float = Field(default=0.0, ge=0, description="price per 1M prompt tokens")
    completion_per_1m: float = Field(default=0.0, ge=0, description="price per 1M completion tokens")


class ReasoningFamily(_Strict):
    """How a model family switches reasoning on in the request body."""

    type: Literal["chat_template_kwargs", "reasoning_effort"] = Field(
        description="chat_template_kwargs: set {parameter: true/false} (Qwen3, DeepSeek on vLLM); "
        "reasoning_effort: set reasoning_effort (OpenAI-style models)"
    )
    parameter: str = Field(default="enable_thinking", description="chat_template_kwargs key (type chat_template_kwargs)")
    effort: Literal["low", "medium", "high"] = Field(default="medium", description="value for type reasoning_effort")


class PIIPolicy(_Strict):
    """Which detected PII types a model may receive."""

    allow_by_default: bool = Field(default=True, description="true: any PII may be sent to this model")
    allowed_types: tuple[str, ...] = Field(
        default=(), description="when allow_by_default is false, the only PII types this model may receive"
    )


class Model(_Strict):
    name: str = Field(description="the name clients send in `model` and upstreams answer with")
    cluster: str | None = Field(default=None, description="Envoy cluster name; default: model name")
    endpoints: tuple[Endpoint, ...] = Field(min_length=1, description="where the model is served")
    pricing: Pricing = Field(default=Pricing(), description="cost; the cheapest candidate is preferred when "
                             "the quality target allows")
    reasoning_family: ReasoningFamily | None = Field(
        default=None, description="how to switch reasoning on for this model; null = it has no reasoning mode"
    )
    pii_policy: PIIPolicy = Field(default=PIIPolicy(), description="which detected PII this model may receive")

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("use letters, digits and . _ : / - (must not start with a symbol)")
        return v

    @property
    def cluster_name(self) -> str:
        return self.cluster or self.name


class ModelScore(_Strict):
    model: str = Field(description="a configured model name")
    score: float = Field(ge=0, le=1, description="how good this model is for the category (higher first)")
    use_reasoning: bool = Field(default=False, description="switch reasoning on when this model is chosen")


class SystemPrompt(_Strict):
    text: str = Field(min_length=1, description="the system prompt")
    mode: Literal["insert", "replace"] = Field(
        default="insert", description="insert: prepend before the client's system message; replace: drop it"
    )


class Category(_Strict):
    name: str = Field(min_length=1, description="the label (compared lower-case) reported in x-vsr-selected-category")
    description: str = Field(default="", description="free text for operators")
    model_scores: tuple[ModelScore, ...] = Field(min_length=1, description="candidate models, best first by score")
    system_prompt: SystemPrompt | None = Field(default=None, description="injected for requests of this category")
    examples: tuple[str, ...] = Field(
        default=(), description="example utterances; used to classify categories the trained head does not know"
    )
    reasoning_above_complexity: float | None = Field(
        default=None, ge=0, le=1,
        description="switch reasoning on (for models with a reasoning family) when the request's complexity is at "
        "least this, even where model_scores do not ask for it; null = never",
    )

    @field_validator("name")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.strip().lower()


class KeywordRule(_Strict):
    """Maps a request to a category when its keywords match.

    OR: any keyword matches; AND: all match; NOR: none matches.
    """

    name: str = Field(min_length=1, description="reported as x-semrouter-reason: keyword:<name>")
    category: str = Field(description="a configured category")
    operator: Literal["OR", "AND", "NOR"] = Field(default="OR", description="OR: any keyword; AND: all; NOR: none")
    keywords: tuple[str, ...] = Field(min_length=1, description="plain words/phrases, or regexes with regex: true")
    regex: bool = Field(default=False, description="treat keywords as regular expressions")
    case_sensitive: bool = False
    whole_word: bool = Field(default=True, description="plain keywords match whole words only")

    @model_validator(mode="after")
    def _compiles(self) -> KeywordRule:
        if self.regex:
            for k in self.keywords:
                try:
                    re.compile(k)
                except re.error as e:
                    raise ValueError(f"keyword {k!r} is not a valid regex: {e}") from e
        return self


class Routing(_Strict):
    auto_model_names: tuple[str, ...] = Field(
        default=("auto", "MoM"), min_length=1, description="`model` values that ask the router to decide"
    )
    default_model: str = Field(description="used whenever no signal is confident")
    classify_text: Literal["last_user", "all_user", "conversation"] = Field(
        default="last_user", description="which messages are classified"
    )
    endpoint_selection: Literal["cluster_header", "original_dst", "both"] = Field(
        default="both", description="which routing headers the router sets for Envoy"
    )
    quality_target: float = Field(
        default=0.5, ge=0, le=1, description="0 = always the cheapest candidate, 1 = always the best"
    )
    endpoint_fail_threshold: int = Field(
        default=3, ge=1, description="consecutive failed answers (5xx) after which an endpoint is skipped"
    )
    endpoint_cooldown_seconds: float = Field(
        default=10.0, gt=0, description="how long a failing endpoint is skipped before it is tried again"
    )
    explicit_model_signals: Literal["needed", "all"] = Field(
        default="needed", description="signals run for a request that names its model: needed = only what its "
        "policies use (jailbreak; PII when its pii_policy or the cache needs it; category for per-category "
        "overrides), all = every signal, as for auto (semrouter/decision/needs.py)"
    )
    path_models: dict[str, str] = Field(
        default_factory=dict,
        description="paths the router does not decide (embeddings, completions, audio, images) -> the model that "
        "serves them (a JSON body's `model` is set to it); a key is an exact path (/v1/embeddings) or a prefix "
        "ending in / (/v1/audio/); any other path (in /v1/ or not, e.g. an upstream's /health or /metrics) gets "
        "an OpenAI-style 404. These bodies are routed, not checked (no jailbreak guard, PII policy or cache): "
        "a model with a restrictive pii_policy cannot be named here",
    )

    @field_validator("path_models")
    @classmethod
    def _paths_ok(cls, v: dict[str, str]) -> dict[str, str]:
        for path in v:
            if not path.startswith("/") or "?" in path or "//" in path:
                raise ValueError(f"{path!r}: use an absolute path without a query, e.g. /v1/embeddings or /v1/audio/")
        return v


def _port_of(hostport: str) -> int:
    return int(hostport.rpartition(":")[2])


class Server(_Strict):
    listen: str = Field(default="127.0.0.1:50051", description="gRPC address for ext_proc and health (Envoy's side)")
    admin_listen: str | None = Field(
        default="127.0.0.1:50052",
        description="gRPC address for the admin API, a port of its own that Envoy never routes to (read at "
        "start-up); None = off",
    )
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="larger request bodies get 413")
    metrics_listen: str | None = Field(default=None, description="host:port for Prometheus metrics; None = off")
    grace_seconds: float = Field(default=5.0, ge=0, description="drain time on shutdown")
    watch_config_seconds: float = Field(
        default=2.0, ge=0, description="poll the config file this often and reload on change; 0 = only on SIGHUP"
    )
    admin_token: str | None = Field(
        default=None, description="bearer token for the admin API; required when `admin_listen` is not loopback"
    )
    max_inflight: int = Field(
        default=50_000, ge=1, description="forwarded requests whose answer the router waits to observe (a few KB "
        "each); beyond it the oldest is dropped: still answered, but not cached or counted (server/inflight.py)"
    )
    max_uploads_per_client: int = Field(
        default=16, ge=0, description="requests of one client address (Envoy's source.address) whose body is still "
        "arriving; past it a request is refused at its headers with 429 too_many_uploads (retry-after: 1) before "
        "Envoy buffers its body, so one client's stalled uploads cannot fill Envoy's heap and get everyone 503 "
        "(server/uploads.py); 0 = no bound. Behind a proxy that hides client addresses all its clients share one "
        "address and one set of slots: keep client addresses (docs/DEPLOY.md) or raise the bound"
    )
    inflight_max_age_seconds: float = Field(
        default=900.0, gt=0, description="a forwarded request whose answer has not come by then is dropped likewise"
    )
    analysis_head_chars: int = Field(
        default=8000, ge=1, description="the signals read at most this many characters from the start of a "
        "prompt (plus analysis_tail_chars from its end); the middle of a longer prompt is not analysed"
    )
    analysis_tail_chars: int = Field(
        default=2000, ge=0, description="characters from the end of a prompt longer than the two windows"
    )
    analysis_budget_ms: float = Field(
        default=1000.0, gt=0, description="longest a request waits for the ONNX signals (queue + run); past it "
        "the signals are unavailable for that request (server.signals_unavailable says what happens), counted in "
        "semrouter_analysis_budget_exceeded_total"
    )
    analysis_budget_long_ms: float = Field(
        default=3000.0, gt=0, description="analysis_budget_ms for a prompt longer than one encoder row (an analysis "
        "cost over 4 x signals.max_tokens, signals/config.analysis_cost: the analyzer's heavy lane, which runs "
        "beside the short prompts' lane and costs up to ~10x one row); the larger of this and analysis_budget_ms "
        "applies. Keep it under Envoy's ext_proc message_timeout (5 s in the shipped configs), past which Envoy "
        "itself fails the request open or closed"
    )
    signals_unavailable: Literal["refuse", "route"] = Field(
        default="refuse", description="when a signal a blocking policy needs (the jailbreak guard with a `block` "
        "action, a model's restrictive pii_policy) is unavailable for a request (over analysis_budget_ms, or the "
        "model failed): `refuse` answers 503 signals_unavailable (retry-after: 1) in the API's error shape, so a "
        "flood of heavy prompts cannot turn the policies off for other requests; `route` routes it without them "
        "(keyword rules, else the default model), as before"
    )

    @field_validator("listen", "metrics_listen", "admin_listen")
    @classmethod
    def _hostport(cls, v: str | None) -> str | None:
        if v is None:
            return v
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("expected host:port, e.g. 127.0.0.1:50051")
        return v

    @model_validator(mode="after")
    def _admin_apart(self) -> Server:
        if self.admin_listen is not None and _port_of(self.admin_listen) == _port_of(self.listen) != 0:
            raise ValueError(f"server.admin_listen {self.admin_listen!r} uses the ext_proc port of server.listen "
                             f"{self.listen!r}; give the admin API a port of its own (e.g. 127.0.0.1:50052)")
        return self


class Logging(_Strict):
    format: Literal["json", "console"] = Field(default="json", description="json for production, console for dev")
    level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="minimum level logged")


class Tracing(_Strict):
    enabled: bool = Field(default=False, description="OpenTelemetry spans per request stage (needs opentelemetry-sdk)")
    otlp_endpoint: str | None = Field(default=None, description="OTLP/gRPC collector, e.g. http://otel-collector:4317")
    service_name: str = Field(default="semrouter", description="service.name resource attribute")


class Config(_Strict):
    server: Server = Field(default=Server(), description="the router's gRPC server")
    logging: Logging = Field(default=Logging(), description="structured logs (structlog)")
    tracing: Tracing = Field(default=Tracing(), description="optional OpenTelemetry tracing (off by default)")
    routing: Routing = Field(description="how `auto` requests are decided")
    models: tuple[Model, ...] = Field(min_length=1, description="the models behind Envoy and their endpoints")
    categories: tuple[Category, ...] = Field(default=(), description="request categories and their candidate models")
    keyword_rules: tuple[KeywordRule, ...] = Field(default=(), description="rules checked before the classifier, in order")
    signals: SignalsConfig = Field(default=SignalsConfig(), description="ONNX signals: encoder, classifiers, PII")
    language: LanguageConfig = Field(default=LanguageConfig(), description="language signal and per-language rules")
    cache: CacheConfig = Field(default=CacheConfig(), description="the semantic cache")

    @model_validator(mode="after")
    def _references(self) -> Config:
        names = [m.name for m in self.models]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"models: duplicate model name(s) {sorted(dup)}; each name must be unique")
        known = set(names)
        if self.routing.default_model not in known:
            raise ValueError(
                f"routing.default_model: {self.routing.default_model!r} is not a configured model; "
                f"use one of {sorted(known)}"
            )
        for path, name in self.routing.path_models.items():
            if name not in known:
                raise ValueError(f"routing.path_models[{path!r}]: {name!r} is not a configured model; "
                                 f"use one of {sorted(known)}")
            policy = next(m.pii_policy for m in self.models if m.name == name)
            if not policy.allow_by_default:
                # the router does not read these bodies for PII (embeddings inputs, legacy prompts, audio): the
                # model's policy could not hold there, while chat requests for it get 403 pii_not_allowed
                raise ValueError(
                    f"routing.path_models[{path!r}]: {name!r} has a restrictive pii_policy, which the router cannot "
                    f"apply on paths it does not decide (their bodies are not checked for PII); name a model whose "
                    f"pii_policy allows every type (allow_by_default: true), or remove the path")
        clash = known & set(self.routing.auto_model_names)
        if clash:
            raise ValueError(f"routing.auto_model_names: {sorted(clash)} is also a model name; rename one")
        cats = [c.name for c in self.categories]
        if len(set(cats)) != len(cats):
            raise ValueError("categories: duplicate category names")
        for i, c in enumerate(self.categories):
            for j, s in enumerate(c.model_scores):
                if s.model not in known:
                    raise ValueError(
                        f"categories[{i}].model_scores[{j}].model: {s.model!r} is not a configured model; "
                        f"use one of {sorted(known)}"
                    )
        for i, r in enumerate(self.keyword_rules):
            if r.category.lower() not in set(cats):
                raise ValueError(
                    f"keyword_rules[{i}].category: {r.category!r} is not a configured category; "
                    f"use one of {sorted(cats)}"
                )
        for i, lr in enumerate(self.language.rules):
            if lr.model is not None and lr.model not in known:
                raise ValueError(f"language.rules[{i}].model: {lr.model!r} is not a configured model; "
                                 f"use one of {sorted(known)}")
            if lr.category is not None and lr.category not in set(cats):
                raise ValueError(f"language.rules[{i}].category: {lr.category!r} is not a configured category; "
                                 f"use one of {sorted(cats)}")
        ml = self.signals.multilingual
        # checked when written: the default ([ja]) must not make a config that narrows language.detect invalid (a
        # default language lingua never reports is simply never seen)
        for code in (ml.languages if ml.enabled and "languages" in ml.model_fields_set else ()):
            if code not in self.language.detect:
                raise ValueError(f"signals.multilingual.languages: {code!r} is not in language.detect; add it there "
                                 "or remove it here")
            if code in self.language.classifier_languages:
                raise ValueError(f"signals.multilingual.languages: {code!r} is in language.classifier_languages (the "
                                 "English classifier decides those); remove it from one of the two")
        so = ml.second_opinion
        for code in (so.languages if so.enabled and "languages" in so.model_fields_set else ()):
            if not self.language.trusted(code):
                raise ValueError(f"signals.multilingual.second_opinion.languages: {code!r} is not in "
                                 "language.classifier_languages (only the classifier's languages get a second "
                                 "opinion); add it there or remove it here")
        return self

    def model(self, name: str) -> Model | None:
        for m in self.models:
            if m.name == name:
                return m
        return None

    def category(self, name: str) -> Category | None:
        for c in self.categories:
            if c.name == name:
                return c
        return None
