"""The runtime objects built from one config, swapped atomically on reload.

A `Runtime` is immutable: a stream takes `holder.current` once when it starts and keeps it to the end,
so in-flight requests finish on the config they started with. State that must survive a reload
(endpoint health, metrics) lives in `Shared` and is handed to every new Runtime.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from semrouter.config.schema import Config
from semrouter.decision.endpoints import EndpointHealth, EndpointPicker
from semrouter.server.inflight import InflightTable
from semrouter.signals.keywords import KeywordSignal
from semrouter.signals.types import Analyzer
from semrouter.telemetry.metrics import Metrics
from semrouter.telemetry.tracing import Tracer

log = structlog.get_logger("semrouter.runtime")


@dataclass
class Shared:
    """Process-wide state that outlives config reloads (owned by the server, passed explicitly)."""

    health: EndpointHealth = field(default_factory=EndpointHealth)
    rng: random.Random = field(default_factory=random.Random)
    metrics: Metrics = field(default_factory=Metrics)
    tracer: Tracer = field(default_factory=Tracer.disabled)
    inflight: InflightTable = field(default_factory=InflightTable)  # forwarded requests awaiting their answer


@dataclass(frozen=True)
class Runtime:
    config: Config
    version: str
    loaded_at: float
    keywords: KeywordSignal
    picker: EndpointPicker
    shared: Shared
    analyzer: Analyzer | None = None
    cache: Any = None  # semrouter.cache.semantic.SemanticCache when enabled

    async def close(self) -> None:
        if self.cache is not None:
            await self.cache.close()
        if self.analyzer is not None:
            await self.analyzer.close()


def config_version(cfg: Config) -> str:
    return hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:12]


async def build_runtime(cfg: Config, shared: Shared) -> Runtime:
    """Build everything a config asks for. Raises if a required part cannot be built."""
    analyzer: Analyzer | None = None
    cache = None
    if cfg.signals.enabled:
        from semrouter.signals.onnx.analyzer import OnnxAnalyzer

        analyzer = await OnnxAnalyzer.create(cfg.signals, cfg.categories)
    if cfg.cache.enabled:
        from semrouter.cache.semantic import SemanticCache

        if analyzer is None:
            raise ValueError("cache.enabled: the semantic cache needs signals.enabled (it uses the encoder)")
        try:
            cache = await SemanticCache.create(cfg.cache, analyzer.embed)
        except BaseException:
            await analyzer.close()
            raise
    return Runtime(
        config=cfg,
        version=config_version(cfg),
        loaded_at=time.time(),
        keywords=KeywordSignal(cfg.keyword_rules),
        picker=EndpointPicker(shared.health, shared.rng),
        shared=shared,
        analyzer=analyzer,
        cache=cache,
    )


class RuntimeHolder:
    """Holds the current Runtime; `swap` replaces it in one assignment."""

    def __init__(self, runtime: Runtime) -> None:
        self.current = runtime

    def swap(self, runtime: Runtime) -> Runtime:
        old, self.current = self.current, runtime
        return old
