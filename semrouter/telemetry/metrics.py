"""Prometheus metrics for the request path, on a registry owned by one `Metrics` object.

Names follow vLLM Semantic Router (`llm_*`) wherever the meaning is the same, so its
dashboards and alerts keep working; our additions are named `semrouter_*`. Every metric is
documented in docs/METRICS.md (a test checks that the two lists agree).

No global registry is used: each `Metrics()` owns a `CollectorRegistry`, so tests and
several routers in one process never share counters.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import start_wsgi_server

from semrouter.cache.judge import MISS_REASONS

UNKNOWN = "unknown"
DEFAULT_METRICS_LISTEN = "127.0.0.1:9190"

# Latency buckets in seconds. Classifiers and cache lookups are fast (ms); upstream calls slow.
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SLOW = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_TPOT = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)
_TOKENS = (0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)

# Upstream status codes folded into vSR's canonical error reasons.
_REASON_ALIASES = {"deadline_exceeded": "timeout"}


def normalize_error_reason(reason: str) -> str:
    """vSR's canonical reasons: upstream_4xx/upstream_5xx for upstream_NNN, timeout for deadlines."""
    r = (reason or UNKNOWN).strip().lower() or UNKNOWN
    r = _REASON_ALIASES.get(r, r)
    if r.startswith("upstream_") and r[9:].isdigit() and len(r) == 12:
        return f"upstream_{r[9]}xx"
    return r if _REASON.match(r) else "other"


_REASON = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def _label(v: str | None) -> str:
    return v if v else UNKNOWN


def _closed(v: str | None, known: frozenset[str] | None) -> str:
    """`v` when it is a known name (any value while no vocabulary is set), else `unknown`."""
    if not v:
        return UNKNOWN
    return v if known is None or v in known else UNKNOWN


class Metrics:
    """Every metric the router exports. Methods are cheap and thread-safe (prometheus_client).

    Label values are closed sets, so no client can mint series: model labels are the configured model names
    and `auto` aliases, category labels the configured categories (`set_vocabulary`, called for each config
    the router loads), anything else `unknown`; error reasons are code-defined identifiers (`other`
    otherwise). Before `set_vocabulary` any model/category value is kept (tests, tools)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self._models: frozenset[str] | None = None
        self._categories: frozenset[str] | None = None

        # -- routing (vSR names) --
        self.model_requests = Counter(
            "llm_model_requests_total", "Requests routed to each model", ["model"], registry=r)
        self.routing_reasons = Counter(
            "llm_routing_reason_codes_total", "Routing decisions by reason code and chosen model",
            ["reason_code", "model"], registry=r)
        self.routing_modifications = Counter(
            "llm_model_routing_modifications_total",
            "Requests whose model was changed by the router (source = requested, target = chosen)",
            ["source_model", "target_model"], registry=r)
        self.routing_latency = Histogram(
            "llm_model_routing_latency_seconds", "Time from request body received to routing decision",
            buckets=_FAST, registry=r)
        # A Gauge only so the exported name is exactly vSR's (a Counter would get `_total` appended);
        # it is only ever incremented.
        self.category_classifications = Gauge(
            "llm_category_classifications_count", "Requests by the category the router settled on (monotonic)",
            ["category"], registry=r)
        self.request_languages = Counter(
            "llm_request_languages_total", "Routed requests by the prompt's detected language (ISO 639-1, or und)",
            ["language"], registry=r)
        self.reasoning_decisions = Counter(
            "llm_reasoning_decisions_total", "Reasoning-mode decisions by category, model and effort",
            ["category", "model", "enabled", "effort"], registry=r)
        self.classifier_latency = Histogram(
            "llm_classifier_latency_seconds", "Latency of one signal (classifier) invocation",
            ["classifier"], buckets=_FAST, registry=r)

        # -- semantic cache (vSR names) --
        self.cache_hits = Counter("llm_cache_hits_total", "Semantic cache hits", registry=r)
        self.cache_misses = Counter("llm_cache_misses_total", "Semantic cache misses", registry=r)
        self.cache_miss_reasons = Counter(
            "semrouter_cache_miss_reasons_total", "Semantic cache misses by reason (closed set: "
            "semrouter.cache.judge.MISS_REASONS)", ["reason"], registry=r)
        for reason in MISS_REASONS:
            self.cache_miss_reasons.labels(reason)
        self.cache_op_duration = Histogram(
            "llm_cache_operation_duration_seconds", "Duration of cache operations",
            ["backend", "operation"], buckets=_FAST, registry=r)
        self.cache_ops = Counter(
            "llm_cache_operations_total", "Cache operations by outcome",
            ["backend", "operation", "status"], registry=r)
        self.cache_entries = Gauge(
            "llm_cache_entries_total", "Entries currently in the cache", ["backend"], registry=r)
        self.cache_errors = Counter(
            "semrouter_cache_errors_total", "Cache operations that failed (the request is still served)",
            ["backend", "operation"], registry=r)

        # -- safety --
        self.pii_violations = Counter(
            "llm_pii_violations_total", "PII policy violations by target model and PII type",
            ["model", "pii_type"], registry=r)
        self.jailbreak_blocks = Counter(
            "semrouter_jailbreak_blocks_total", "Requests refused by the jailbreak guard", registry=r)
        self.pii_blocks = Counter(
            "semrouter_pii_blocks_total", "Requests refused by PII policy, per PII type found",
            ["pii_type"], registry=r)

        # -- upstream / usage (vSR names) --
        self.ttft = Histogram(
            "llm_model_ttft_seconds", "Time to first token of streamed responses",
            ["model"], buckets=_SLOW, registry=r)
        self.tpot = Histogram(
            "llm_model_tpot_seconds", "Time per output token (completion latency / completion tokens)",
            ["model"], buckets=_TPOT, registry=r)
        self.completion_latency = Histogram(
            "llm_model_completion_latency_seconds", "Time from request forwarded to last response byte",
            ["model"], buckets=_SLOW, registry=r)
        self.prompt_tokens = Counter(
            "llm_model_prompt_tokens_total", "Prompt tokens reported in `usage`", ["model"], registry=r)
        self.completion_tokens = Counter(
            "llm_model_completion_tokens_total", "Completion tokens reported in `usage`", ["model"], registry=r)
        self.tokens = Counter(
            "llm_model_tokens_total", "Prompt + completion tokens reported in `usage`", ["model"], registry=r)
        self.prompt_tokens_per_request = Histogram(
            "llm_prompt_tokens_per_request", "Prompt tokens per request", ["model"], buckets=_TOKENS, registry=r)
        self.completion_tokens_per_request = Histogram(
            "llm_completion_tokens_per_request", "Completion tokens per request",
            ["model"], buckets=_TOKENS, registry=r)
        self.cost = Counter(
            "llm_model_cost_total", "Cost of requests from configured pricing", ["model", "currency"], registry=r)
        self.request_errors = Counter(
            "llm_request_errors_total", "Request errors by model and reason", ["model", "reason"], registry=r)

        # -- process-level additions --
        self.active_streams = Gauge(
            "semrouter_active_streams", "ext_proc streams currently open", registry=r)
        self.config_reloads = Counter(
            "semrouter_config_reloads_total", "Config reload attempts by result", ["result"], registry=r)
        self.inflight = Gauge(
            "semrouter_inflight_requests", "Forwarded requests waiting for their answer on the observer stream",
            registry=r)
        self.inflight_dropped = Counter(
            "semrouter_inflight_dropped_total", "Forwarded requests dropped from the in-flight table unanswered",
            ["reason"], registry=r)
        self.cache_backend_up = Gauge(
            "semrouter_cache_backend_up", "1 while the cache backend is usable, 0 while it is marked down", registry=r)
        self.cache_mirror_entries = Gauge(
            "semrouter_cache_mirror_entries", "Entries in the in-process copy of an embedded Milvus Lite cache",
            registry=r)
        self.cache_mirror_bytes = Gauge(
            "semrouter_cache_mirror_bytes", "Estimated bytes of the in-process copy (bounded by mirror_max_bytes)",
            registry=r)
        self.signal_errors = Counter(
            "semrouter_signal_errors_total", "Signal evaluations that failed (routing fell back)",
            ["signal"], registry=r)
        self.analysis_truncated = Counter(
            "semrouter_analysis_truncated_total",
            "Prompts longer than the analysis windows (only their head and tail reached the signals)", registry=r)
        self.analysis_budget_exceeded = Counter(
            "semrouter_analysis_budget_exceeded_total",
            "Requests routed without the ONNX signals because they waited longer than server.analysis_budget_ms",
            registry=r)
        self.safety_partial_coverage = Counter(
            "semrouter_safety_partial_coverage_total",
            "Requests whose safety coverage stayed under 1 (texts longer than the segment budgets), by what "
            "signals.jailbreak.on_partial_coverage did: allow (forwarded, the rest unscored) or block (refused)",
            ["action"], registry=r)

    def set_vocabulary(self, models: Iterable[str], categories: Iterable[str]) -> None:
        """The label values allowed from now on (each replaced whole, so readers see one set or the other)."""
        self._models = frozenset(models)
        self._categories = frozenset(categories)

    def _m(self, model: str | None) -> str:
        return _closed(model, self._models)

    def _c(self, category: str | None) -> str:
        return _closed(category, self._categories)

    # ---------------------------------------------------------------- routing
    def record_request(self, model: str, reason: str) -> None:
        """One routed request: the chosen model and the decision reason (x-semrouter-reason)."""
        self.model_requests.labels(self._m(model)).inc()
        self.routing_reasons.labels(_label(reason), self._m(model)).inc()

    def record_routing_modification(self, source_model: str, target_model: str) -> None:
        """Counted only when the model actually changed (e.g. `auto` → `qwen3-8b`)."""
        if source_model != target_model:
            self.routing_modifications.labels(self._m(source_model), self._m(target_model)).inc()

    def observe_routing_latency(self, seconds: float) -> None:
        self.routing_latency.observe(max(0.0, seconds))

    def record_category(self, category: str | None) -> None:
        self.category_classifications.labels(self._c(category)).inc()

    def record_language(self, language: str) -> None:
        """One routed request's language: an ISO 639-1 code from `language.detect`, or `und` (a closed set)."""
        self.request_languages.labels(language).inc()

    def record_reasoning(self, category: str | None, model: str, enabled: bool, effort: str | None = None) -> None:
        self.reasoning_decisions.labels(
            self._c(category), self._m(model), "true" if enabled else "false", effort or "none").inc()

    def observe_classifier(self, classifier: str, seconds: float) -> None:
        """Latency of one signal, e.g. classifier in {embedding, category, jailbreak, pii, complexity, keyword}."""
        self.classifier_latency.labels(_label(classifier)).observe(max(0.0, seconds))

    def observe_classifier_timings_ms(self, timings_ms: Mapping[str, float] | Iterable[tuple[str, float]]) -> None:
        """Feed `Analysis.timings_ms` (milliseconds per signal) straight in."""
        items = timings_ms.items() if isinstance(timings_ms, Mapping) else timings_ms
        for name, ms in items:
            self.observe_classifier(name, ms / 1000.0)

    @contextmanager
    def time_classifier(self, classifier: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe_classifier(classifier, time.perf_counter() - start)

    def record_signal_error(self, signal: str) -> None:
        self.signal_errors.labels(_label(signal)).inc()

    def record_analysis_truncated(self) -> None:
        self.analysis_truncated.inc()

    def record_analysis_budget_exceeded(self) -> None:
        self.analysis_budget_exceeded.inc()

    def record_safety_partial_coverage(self, action: str) -> None:
        """One request read only in part by the safety guard; `action` is `allow` or `block`."""
        self.safety_partial_coverage.labels("block" if action == "block" else "allow").inc()

    # ---------------------------------------------------------------- cache
    def record_cache_hit(self) -> None:
        self.cache_hits.inc()

    def record_cache_miss(self, reason: str = "") -> None:
        """`reason`: one of MISS_REASONS (anything else is counted as "error"); "" = not counted by reason."""
        self.cache_misses.inc()
        if reason:
            self.cache_miss_reasons.labels(reason if reason in MISS_REASONS else "error").inc()

    def observe_cache_operation(self, operation: str, seconds: float, ok: bool = True,
                                backend: str = "milvus") -> None:
        """operation in {lookup, store, delete, clear, list}; a failed one also counts as a cache error."""
        self.cache_op_duration.labels(backend, operation).observe(max(0.0, seconds))
        self.cache_ops.labels(backend, operation, "success" if ok else "error").inc()
        if not ok:
            self.cache_errors.labels(backend, operation).inc()

    @contextmanager
    def time_cache_operation(self, operation: str, backend: str = "milvus") -> Iterator[None]:
        """Times the block; an exception marks it failed (and propagates)."""
        start = time.perf_counter()
        ok = False
        try:
            yield
            ok = True
        finally:
            self.observe_cache_operation(operation, time.perf_counter() - start, ok, backend)

    def set_cache_entries(self, count: int, backend: str = "milvus") -> None:
        self.cache_entries.labels(backend).set(max(0, count))

    # ---------------------------------------------------------------- safety
    def record_jailbreak_block(self, model: str | None = None) -> None:
        self.jailbreak_blocks.inc()
        self.request_errors.labels(self._m(model), "jailbreak_block").inc()

    def record_pii_block(self, model: str | None, pii_types: Iterable[str]) -> None:
        """A request refused because `model` may not receive these PII types."""
        types = sorted(set(pii_types)) or [UNKNOWN]
        for t in types:
            self.pii_blocks.labels(t).inc()
            self.pii_violations.labels(self._m(model), t).inc()
        self.request_errors.labels(self._m(model), "pii_policy_denied").inc()

    # ---------------------------------------------------------------- upstream
    def observe_ttft(self, model: str, seconds: float) -> None:
        if seconds > 0:
            self.ttft.labels(self._m(model)).observe(seconds)

    def observe_completion(self, model: str, seconds: float, completion_tokens: int | None = None) -> None:
        """Whole-response latency; with a token count also time-per-output-token."""
        self.completion_latency.labels(self._m(model)).observe(max(0.0, seconds))
        if completion_tokens and completion_tokens > 0 and seconds > 0:
            self.tpot.labels(self._m(model)).observe(seconds / completion_tokens)

    def record_usage(self, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        """Token counts from the response's `usage` object (negative values are ignored)."""
        p, c = max(0, int(prompt_tokens)), max(0, int(completion_tokens))
        m = self._m(model)
        self.prompt_tokens.labels(m).inc(p)
        self.completion_tokens.labels(m).inc(c)
        self.tokens.labels(m).inc(p + c)
        self.prompt_tokens_per_request.labels(m).observe(p)
        self.completion_tokens_per_request.labels(m).observe(c)

    def record_cost(self, model: str, amount: float, currency: str = "USD") -> None:
        if amount > 0:
            self.cost.labels(self._m(model), currency or "USD").inc(amount)

    def record_error(self, model: str | None, reason: str) -> None:
        """reason e.g. parse_error, body_too_large, upstream_503, timeout, cancellation, internal."""
        self.request_errors.labels(self._m(model), normalize_error_reason(reason)).inc()

    # ---------------------------------------------------------------- process
    def stream_opened(self) -> None:
        self.active_streams.inc()

    def stream_closed(self) -> None:
        self.active_streams.dec()

    def record_inflight_drop(self, reason: str) -> None:
        self.inflight_dropped.labels(reason).inc()

    def watch(self, inflight: Callable[[], int], cache_state: Callable[[], Mapping[str, float]]) -> None:
        """Gauges read at scrape time: the in-flight table's size, and the current cache's state
        (`cache_state()` -> {"backend_up", "mirror_entries", "mirror_bytes"}; missing keys read 0)."""
        self.inflight.set_function(lambda: float(inflight()))
        self.cache_backend_up.set_function(lambda: float(cache_state().get("backend_up", 0)))
        self.cache_mirror_entries.set_function(lambda: float(cache_state().get("mirror_entries", 0)))
        self.cache_mirror_bytes.set_function(lambda: float(cache_state().get("mirror_bytes", 0)))

    def record_config_reload(self, ok: bool) -> None:
        self.config_reloads.labels("success" if ok else "error").inc()

    # ---------------------------------------------------------------- export
    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """A sample's current value (tests, admin stats); None when it has not been recorded."""
        return self.registry.get_sample_value(name, labels or {})

    def start_http_server(self, listen: str = DEFAULT_METRICS_LISTEN) -> MetricsServer:
        """Serve this registry on http://listen/metrics (see module-level `start_http_server`)."""
        return start_http_server(self, listen)


@dataclass
class MetricsServer:
    """A running /metrics HTTP server; `stop()` shuts it down and joins its thread."""

    host: str
    port: int
    _httpd: WSGIServer
    _thread: Thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def parse_listen(listen: str) -> tuple[str, int]:
    """'host:port' (IPv6 as '[::1]:9190') → (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, e.g. {DEFAULT_METRICS_LISTEN}; got {listen!r}")
    return host.strip("[]"), int(port)


def start_http_server(metrics: Metrics, listen: str = DEFAULT_METRICS_LISTEN) -> MetricsServer:
    """Serve `metrics.registry` on http://listen/metrics in a daemon thread. Port 0 picks a free port."""
    host, port = parse_listen(listen)
    httpd, thread = start_wsgi_server(port, addr=host, registry=metrics.registry)
    return MetricsServer(host=host, port=httpd.server_port, _httpd=httpd, _thread=thread)
