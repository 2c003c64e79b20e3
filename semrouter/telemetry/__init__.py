"""Operability: Prometheus metrics, structured logging and optional tracing."""

from semrouter.telemetry.logging import configure_logging
from semrouter.telemetry.metrics import Metrics, MetricsServer, start_http_server
from semrouter.telemetry.tracing import Tracer

__all__ = ["Metrics", "MetricsServer", "Tracer", "configure_logging", "start_http_server"]
