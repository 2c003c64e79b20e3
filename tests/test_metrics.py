"""Metrics, logging redaction and tracing (telemetry package)."""

from __future__ import annotations

import io
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import structlog

from semrouter.telemetry.logging import REDACTED, configure_logging, redact_sensitive
from semrouter.telemetry.metrics import Metrics, normalize_error_reason, parse_listen, start_http_server
from semrouter.telemetry.tracing import Tracer, TracingUnavailable

ROOT = Path(__file__).resolve().parents[1]


def test_registries_are_independent() -> None:
    a, b = Metrics(), Metrics()
    a.record_request("qwen3-8b", "category:math")
    assert a.value("llm_model_requests_total", {"model": "qwen3-8b"}) == 1
    assert b.value("llm_model_requests_total", {"model": "qwen3-8b"}) is None


def test_routing_metrics() -> None:
    m = Metrics()
    m.record_request("big", "category:math")
    m.record_request("big", "category:math")
    m.record_request("", "default")
    assert m.value("llm_routing_reason_codes_total", {"reason_code": "category:math", "model": "big"}) == 2
    assert m.value("llm_model_requests_total", {"model": "unknown"}) == 1
    m.record_routing_modification("auto", "big")
    m.record_routing_modification("big", "big")  # unchanged: not a modification
    assert m.value("llm_model_routing_modifications_total", {"source_model": "auto", "target_model": "big"}) == 1
    assert m.value("llm_model_routing_modifications_total", {"source_model": "big", "target_model": "big"}) is None
    m.record_category("math")
    assert m.value("llm_category_classifications_count", {"category": "math"}) == 1
    m.record_reasoning("math", "big", True, "high")
    assert m.value("llm_reasoning_decisions_total",
                   {"category": "math", "model": "big", "enabled": "true", "effort": "high"}) == 1


def test_classifier_latency() -> None:
    m = Metrics()
    from types import MappingProxyType

    m.observe_classifier_timings_ms(MappingProxyType({"jailbreak": 3.0, "category": 12.0}))
    with m.time_classifier("pii"):
        pass
    assert m.value("llm_classifier_latency_seconds_count", {"classifier": "jailbreak"}) == 1
    assert m.value("llm_classifier_latency_seconds_sum", {"classifier": "category"}) == pytest.approx(0.012)
    assert m.value("llm_classifier_latency_seconds_count", {"classifier": "pii"}) == 1


def test_cache_metrics() -> None:
    m = Metrics()
    m.record_cache_hit()
    m.record_cache_miss()
    m.record_cache_miss()
    with m.time_cache_operation("lookup"):
        pass
    with pytest.raises(RuntimeError):
        with m.time_cache_operation("store"):
            raise RuntimeError("milvus down")
    m.set_cache_entries(42)
    assert m.value("llm_cache_hits_total") == 1
    assert m.value("llm_cache_misses_total") == 2
    assert m.value("llm_cache_operations_total",
                   {"backend": "milvus", "operation": "lookup", "status": "success"}) == 1
    assert m.value("llm_cache_operations_total",
                   {"backend": "milvus", "operation": "store", "status": "error"}) == 1
    assert m.value("semrouter_cache_errors_total", {"backend": "milvus", "operation": "store"}) == 1
    assert m.value("semrouter_cache_errors_total", {"backend": "milvus", "operation": "lookup"}) is None
    assert m.value("llm_cache_entries_total", {"backend": "milvus"}) == 42


def test_blocks() -> None:
    m = Metrics()
    m.record_jailbreak_block("auto")
    m.record_pii_block("small", ["EMAIL_ADDRESS", "US_SSN", "EMAIL_ADDRESS"])
    assert m.value("semrouter_jailbreak_blocks_total") == 1
    assert m.value("llm_request_errors_total", {"model": "auto", "reason": "jailbreak_block"}) == 1
    assert m.value("semrouter_pii_blocks_total", {"pii_type": "EMAIL_ADDRESS"}) == 1
    assert m.value("llm_pii_violations_total", {"model": "small", "pii_type": "US_SSN"}) == 1
    assert m.value("llm_request_errors_total", {"model": "small", "reason": "pii_policy_denied"}) == 1


def test_upstream_and_usage() -> None:
    m = Metrics()
    m.observe_ttft("big", 0.2)
    m.observe_ttft("big", 0.0)  # not a real first token: ignored
    m.observe_completion("big", 2.0, completion_tokens=100)
    m.record_usage("big", prompt_tokens=30, completion_tokens=100)
    m.record_cost("big", 0.5)
    assert m.value("llm_model_ttft_seconds_count", {"model": "big"}) == 1
    assert m.value("llm_model_completion_latency_seconds_sum", {"model": "big"}) == 2.0
    assert m.value("llm_model_tpot_seconds_sum", {"model": "big"}) == pytest.approx(0.02)
    assert m.value("llm_model_prompt_tokens_total", {"model": "big"}) == 30
    assert m.value("llm_model_completion_tokens_total", {"model": "big"}) == 100
    assert m.value("llm_model_tokens_total", {"model": "big"}) == 130
    assert m.value("llm_model_cost_total", {"model": "big", "currency": "USD"}) == 0.5


def test_error_reasons_are_normalised() -> None:
    assert normalize_error_reason("upstream_503") == "upstream_5xx"
    assert normalize_error_reason("upstream_429") == "upstream_4xx"
    assert normalize_error_reason("deadline_exceeded") == "timeout"
    assert normalize_error_reason("") == "unknown"
    m = Metrics()
    m.record_error("big", "upstream_502")
    assert m.value("llm_request_errors_total", {"model": "big", "reason": "upstream_5xx"}) == 1


def test_process_metrics() -> None:
    m = Metrics()
    m.stream_opened()
    m.stream_opened()
    m.stream_closed()
    m.record_config_reload(False)
    assert m.value("semrouter_active_streams") == 1
    assert m.value("semrouter_config_reloads_total", {"result": "error"}) == 1


def test_http_server_serves_registry_and_stops() -> None:
    m = Metrics()
    m.record_request("big", "default")
    srv = start_http_server(m, "127.0.0.1:0")
    try:
        assert srv.port > 0
        body = urllib.request.urlopen(srv.url, timeout=5).read().decode()
        assert 'llm_model_requests_total{model="big"} 1.0' in body
    finally:
        srv.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(srv.url, timeout=2)


def test_parse_listen() -> None:
    assert parse_listen("0.0.0.0:9190") == ("0.0.0.0", 9190)
    assert parse_listen("[::1]:9190") == ("::1", 9190)
    with pytest.raises(ValueError):
        parse_listen("9190")


def test_docs_list_every_metric() -> None:
    """docs/METRICS.md documents exactly the metrics the registry exports."""
    text = Metrics().render().decode()
    exported = {n for n in re.findall(r"^# TYPE (\S+) ", text, flags=re.M) if not n.endswith("_created")}
    doc = (ROOT / "docs" / "METRICS.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)`", doc, flags=re.M))
    assert len(exported) > 20
    assert documented == exported, documented ^ exported


# ------------------------------------------------------------------ logging

@pytest.fixture(autouse=True)
def _restore_logging() -> Any:
    """configure_logging changes process-wide logging; undo it after each test."""
    import logging

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_redaction_processor() -> None:
    ev = {
        "event": "request",
        "authorization": "Bearer sk-secret",
        "headers": {"Cookie": "a=b", "x-request-id": "r1"},
        "pairs": [("x-api-key", "k1"), ("accept", "json")],
        "envoy": [{"key": "proxy-authorization", "raw_value": b"Basic xyz"}],
    }
    out = redact_sensitive(None, "info", ev)
    assert out["authorization"] == REDACTED
    assert out["headers"] == {"Cookie": REDACTED, "x-request-id": "r1"}
    assert out["pairs"] == [("x-api-key", REDACTED), ("accept", "json")]
    assert out["envoy"][0]["raw_value"] == REDACTED
    assert "sk-secret" not in json.dumps(out, default=str)


def test_configure_logging_json_and_level() -> None:
    buf = io.StringIO()
    configure_logging("json", "info", stream=buf)
    log = structlog.get_logger("t")
    log.debug("hidden")
    log.info("routed", model="big", headers={"authorization": "Bearer sk-secret"})
    lines = [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0]["event"] == "routed" and lines[0]["level"] == "info"
    assert lines[0]["headers"]["authorization"] == REDACTED
    assert "timestamp" in lines[0]


def test_stdlib_logging_goes_through_structlog() -> None:
    import logging

    buf = io.StringIO()
    configure_logging("json", "info", stream=buf)
    logging.getLogger("grpc._server").warning("stream reset %s", "x")
    logging.getLogger("grpc._server").debug("hidden")
    lines = [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0]["event"] == "stream reset x" and lines[0]["level"] == "warning"
    assert lines[0]["logger"] == "grpc._server"


def test_configure_logging_console_and_bad_args() -> None:
    buf = io.StringIO()
    configure_logging("console", "debug", stream=buf)
    structlog.get_logger().debug("hello", cookie="c=1")
    text = buf.getvalue()
    assert "hello" in text and "c=1" not in text
    with pytest.raises(ValueError):
        configure_logging("xml", "info")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        configure_logging("json", "verbose")
    configure_logging("json", "warning", stream=io.StringIO())


# ------------------------------------------------------------------ tracing

def test_tracing_disabled_is_noop() -> None:
    t = Tracer.from_settings(enabled=False)
    assert not t.enabled
    with t.span("decide", model="big") as span:
        span.set_attribute("x", 1)
    t.shutdown()


def test_tracing_enabled_uses_given_tracer() -> None:
    class FakeSpan:
        def __init__(self) -> None:
            self.attrs: dict[str, object] = {}

        def set_attribute(self, k: str, v: object) -> None:
            self.attrs[k] = v

        def __enter__(self) -> "FakeSpan":
            return self

        def __exit__(self, *a: object) -> None:
            return None

    class FakeTracer:
        def __init__(self) -> None:
            self.spans: list[tuple[str, FakeSpan]] = []

        def start_as_current_span(self, name: str) -> FakeSpan:
            s = FakeSpan()
            self.spans.append((name, s))
            return s

    ft = FakeTracer()
    t = Tracer(True, ft)
    with t.span("signals", n=3, obj=["a"], skipped=None):
        pass
    assert ft.spans[0][0] == "semrouter.signals"
    assert ft.spans[0][1].attrs == {"n": 3, "obj": "['a']"}


def test_tracing_enabled_without_otel_says_how_to_install() -> None:
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        with pytest.raises(TracingUnavailable, match="pip install"):
            Tracer.from_settings(enabled=True)
    else:
        assert Tracer.from_settings(enabled=True).enabled


# ------------------------------------------------ issue 12: no locals, no request secrets, closed labels

@pytest.mark.parametrize("fmt", ["json", "console"])
def test_tracebacks_carry_no_locals_and_no_request_secrets(fmt: str) -> None:
    import asyncio

    from semrouter.telemetry.logging import hide_in_logs

    buf = io.StringIO()
    configure_logging(fmt, "info", stream=buf)  # type: ignore[arg-type]
    prompt = "the quokka ledger of 1987 " * 20

    async def request() -> None:
        hide_in_logs(["Bearer sk-live-123456789", prompt])
        local_secret = "local-only-value-42"  # noqa: F841 (a local a traceback with locals would print)
        try:
            raise ValueError(f"cannot handle {prompt[:80]!r} for sk-live-123456789")
        except ValueError:
            structlog.get_logger("t").exception("phase_failed", note=prompt)

    asyncio.run(request())
    structlog.get_logger("t").info("later", text="sk-live-123456789")  # another task: not registered there
    out = buf.getvalue()
    assert "phase_failed" in out and "ValueError" in out and "test_metrics.py" in out
    assert "local-only-value-42" not in out
    assert "quokka" not in out
    assert out.count("sk-live-123456789") == 1  # only the event outside the request's task


def test_bearer_tokens_are_scrubbed_anywhere() -> None:
    buf = io.StringIO()
    configure_logging("json", "info", stream=buf)
    structlog.get_logger("t").warning("upstream said", detail="got header Authorization: Bearer abc.def-ghi")
    assert "abc.def-ghi" not in buf.getvalue() and "Bearer [REDACTED]" in buf.getvalue()


def test_cookie_values_are_hidden_one_by_one() -> None:
    import asyncio

    from semrouter.telemetry.logging import hide_in_logs
    buf = io.StringIO()
    configure_logging("json", "info", stream=buf)

    async def request() -> None:
        hide_in_logs(["theme=dark; session=s3ss10n-v4lue-xyz"])
        structlog.get_logger("t").error("failed", detail="lookup of s3ss10n-v4lue-xyz failed")
    asyncio.run(request())
    assert "s3ss10n-v4lue-xyz" not in buf.getvalue() and "lookup of" in buf.getvalue()


def test_unknown_models_and_categories_mint_no_series() -> None:
    m = Metrics()
    m.set_vocabulary(models=["small", "auto"], categories=["math"])
    for junk in ("junk-1", "junk-2", "x" * 300):
        m.record_error(junk, "model_not_found")
        m.record_jailbreak_block(junk)
        m.record_routing_modification(junk, "small")
        m.record_category(junk)
        m.record_usage(junk, 1, 1)
    m.record_error("small", "weird reason with spaces")
    text = m.render().decode()
    assert "junk" not in text and "x" * 50 not in text
    assert m.value("llm_request_errors_total", {"model": "unknown", "reason": "model_not_found"}) == 3
    assert m.value("llm_request_errors_total", {"model": "small", "reason": "other"}) == 1
    assert m.value("llm_category_classifications_count", {"category": "unknown"}) == 3
