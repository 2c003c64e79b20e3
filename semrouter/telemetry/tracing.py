"""Optional OpenTelemetry spans, one per request stage. OFF by default.

OpenTelemetry is not a dependency: it is imported only when a `Tracer` is created with
`enabled=True` (install `opentelemetry-sdk` and `opentelemetry-exporter-otlp-proto-grpc`).
When disabled, `Tracer.span()` is a no-op context manager that costs one function call.

The tracer provider is created per `Tracer` (never installed as OpenTelemetry's global
provider), so two routers in one process do not share exporters.

    tracer = Tracer.from_settings(enabled=False)
    with tracer.span("classify", category="math") as span:
        span.set_attribute("confidence", 0.93)
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

STAGES = ("parse", "signals", "cache_lookup", "decide", "upstream", "cache_store")


class SpanLike(Protocol):
    def set_attribute(self, key: str, value: Any) -> None: ...


class _NoopSpan:
    __slots__ = ()

    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def record_exception(self, exc: BaseException) -> None:
        return None


_NOOP_SPAN = _NoopSpan()


class TracingUnavailable(RuntimeError):
    """Tracing was enabled but the OpenTelemetry packages are not installed."""


def _attr(v: Any) -> Any:
    return v if isinstance(v, (str, bool, int, float)) else str(v)


class Tracer:
    """Creates spans when enabled; otherwise every call is a no-op."""

    def __init__(self, enabled: bool = False, otel_tracer: Any | None = None, provider: Any | None = None) -> None:
        self.enabled = enabled and otel_tracer is not None
        self._tracer = otel_tracer
        self._provider = provider

    @classmethod
    def disabled(cls) -> Tracer:
        return cls(False)

    @classmethod
    def from_settings(
        cls,
        enabled: bool = False,
        service_name: str = "semrouter",
        otlp_endpoint: str | None = None,
        resource_attributes: Mapping[str, str] | None = None,
    ) -> Tracer:
        """Build a tracer. With enabled=False nothing is imported.

        otlp_endpoint e.g. "http://otel-collector:4317" (OTLP/gRPC); None → spans are created
        and sampled but exported nowhere (useful with a propagating proxy only).
        """
        if not enabled:
            return cls(False)
        try:
            sdk_trace = importlib.import_module("opentelemetry.sdk.trace")
            sdk_resources = importlib.import_module("opentelemetry.sdk.resources")
        except ImportError as e:
            raise TracingUnavailable(
                "tracing is enabled but OpenTelemetry is not installed; "
                "pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-grpc"
            ) from e
        attrs = {"service.name": service_name, **dict(resource_attributes or {})}
        provider = sdk_trace.TracerProvider(resource=sdk_resources.Resource.create(attrs))
        if otlp_endpoint:
            try:
                exporter_mod = importlib.import_module("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
                export_mod = importlib.import_module("opentelemetry.sdk.trace.export")
            except ImportError as e:
                raise TracingUnavailable(
                    "an OTLP endpoint is set but the exporter is missing; "
                    "pip install opentelemetry-exporter-otlp-proto-grpc"
                ) from e
            exporter = exporter_mod.OTLPSpanExporter(endpoint=otlp_endpoint)
            provider.add_span_processor(export_mod.BatchSpanProcessor(exporter))
        return cls(True, provider.get_tracer("semrouter"), provider)

    @contextmanager
    def span(self, name: str, **attributes: Any) -> Iterator[SpanLike]:
        """A span named `semrouter.<name>`; exceptions are recorded on it and re-raised."""
        if not self.enabled:
            yield _NOOP_SPAN
            return
        assert self._tracer is not None
        with self._tracer.start_as_current_span(f"semrouter.{name}") as span:
            for k, v in attributes.items():
                if v is not None:
                    span.set_attribute(k, _attr(v))
            yield span

    def shutdown(self) -> None:
        """Flush and stop exporters (call on router shutdown)."""
        if self._provider is not None and hasattr(self._provider, "shutdown"):
            self._provider.shutdown()
