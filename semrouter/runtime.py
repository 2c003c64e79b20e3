"""The runtime objects built from one config, swapped atomically on reload.

A `Runtime` is immutable: a stream takes `holder.acquire()` once when it starts and releases it at its end,
so in-flight requests finish on the config they started with. State that must survive a reload
(endpoint health, metrics) lives in `Shared` and is handed to every new Runtime.

A reload reuses the heavy parts of the current runtime when their config did not change: the ONNX
analyzer (same `signals`, `categories` and model-directory manifest) and, with it, the semantic cache
(same `cache`). A reload that changes neither costs no memory; one that does builds the new part while
the old one serves, and the old part is closed as soon as the last stream using it ends (`retire`).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

import structlog

from semrouter.config.schema import Config
from semrouter.decision.endpoints import EndpointHealth, EndpointPicker
from semrouter.decision.needs import PolicyFingerprints, policy_fingerprints
from semrouter.server.conversations import ResponseOwners
from semrouter.server.inflight import InflightTable
from semrouter.server.uploads import UploadSlots
from semrouter.signals.keywords import KeywordSignal
from semrouter.signals.language import LanguageDetector
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
    response_owners: ResponseOwners = field(default_factory=ResponseOwners)  # Responses ids -> model, endpoint
    uploads: UploadSlots = field(default_factory=UploadSlots)  # request bodies still arriving, per client address


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
    language: LanguageDetector | None = None  # None when `language.enabled` is false

    models_digest: str = ""  # sha256 of the model directory's manifest.json the analyzer was loaded from
    # decision/needs.policy_fingerprints(config, policy_model_files(config)): part of every cache key's scope
    policy: PolicyFingerprints = PolicyFingerprints(by_model={}, auto="", unknown="")

    async def close(self, keep: Sequence[Runtime] = ()) -> bool:
        """Close the analyzer and cache, except those a runtime in `keep` (still in use) shares.
        Returns whether anything was closed."""
        closed = False
        if self.cache is not None and all(k.cache is not self.cache for k in keep):
            await self.cache.close()
            closed = True
        if self.analyzer is not None and all(k.analyzer is not self.analyzer for k in keep):
            await self.analyzer.close()
            closed = True
        return closed


def config_version(cfg: Config) -> str:
    return hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:12]


def models_digest(cfg: Config) -> str:
    """sha256 of `signals.model_dir`/manifest.json ("" when unreadable: the build then reports why)."""
    try:
        return hashlib.sha256((Path(cfg.signals.model_dir) / "manifest.json").read_bytes()).hexdigest()
    except OSError:
        return ""


def policy_model_files(cfg: Config) -> dict[str, str]:
    """{file name: sha256} from `signals.model_dir`/manifest.json, for decision/needs.policy_fingerprints ({} when
    the signals are off or the manifest is unreadable: the build then reports why)."""
    if not cfg.signals.enabled:
        return {}
    try:
        files = json.loads((Path(cfg.signals.model_dir) / "manifest.json").read_bytes()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def _reusable(old: Runtime | None, cfg: Config, digest: str) -> tuple[Analyzer | None, Any]:
    """(analyzer, cache) of `old` that a runtime for `cfg` can share unchanged, else None for each."""
    if old is None or old.analyzer is None or not cfg.signals.enabled or not digest:
        return None, None
    same_signals = (old.config.signals == cfg.signals and old.config.categories == cfg.categories
                    and old.config.language == cfg.language and old.models_digest == digest)
    if not same_signals:
        return None, None
    cache = old.cache if old.cache is not None and cfg.cache.enabled and old.config.cache == cfg.cache else None
    return old.analyzer, cache


async def build_runtime(cfg: Config, shared: Shared, reuse: Runtime | None = None) -> Runtime:
    """Build everything a config asks for, sharing the parts of `reuse` whose config is unchanged.
    Raises if a required part cannot be built (nothing built for it is left open)."""
    digest = models_digest(cfg) if cfg.signals.enabled else ""
    analyzer, cache = _reusable(reuse, cfg, digest)
    built_analyzer = False
    # The analyzer detects the language beside its encoder run (overlapped); Runtime.language is the fallback. A
    # reused analyzer was built for the same language section, so the runtime shares its detector.
    language = reuse.language if analyzer is not None and reuse is not None else (
        LanguageDetector(cfg.language) if cfg.language.enabled else None)
    if cfg.signals.enabled and analyzer is None:
        from semrouter.signals.onnx.analyzer import OnnxAnalyzer

        analyzer = await OnnxAnalyzer.create(cfg.signals, cfg.categories, language)
        built_analyzer = True
    if cfg.cache.enabled and cache is None:
        from semrouter.cache.semantic import SemanticCache

        if analyzer is None:
            raise ValueError("cache.enabled: the semantic cache needs signals.enabled (it uses the encoder)")
        try:
            embed_ml = getattr(analyzer, "multilingual_embedder", None)
            if embed_ml is None and cfg.cache.multilingual.enabled:
                log.warning("cache_multilingual_unavailable", note="no multilingual encoder (signals.multilingual "
                            "off, language off, or models/e5 missing): non-English prompts use the English path")
            cache = await SemanticCache.create(cfg.cache, analyzer.embed, embed_multilingual=embed_ml)
        except BaseException:
            if built_analyzer:
                await analyzer.close()
            raise
    # after everything built: a failed reload leaves the serving config's label values
    shared.metrics.set_vocabulary(models=[*(m.name for m in cfg.models), *cfg.routing.auto_model_names],
                                  categories=[c.name for c in cfg.categories])
    return Runtime(
        config=cfg,
        version=config_version(cfg),
        loaded_at=time.time(),
        keywords=KeywordSignal(cfg.keyword_rules),
        picker=EndpointPicker(shared.health, shared.rng),
        shared=shared,
        analyzer=analyzer,
        cache=cache,
        models_digest=digest,
        language=language,
        policy=policy_fingerprints(cfg, policy_model_files(cfg)),
    )


class RuntimeHolder:
    """Holds the current Runtime; `swap` replaces it in one assignment.

    Streams `acquire` the current runtime and `release` it when they end, so a replaced runtime can be
    closed as soon as its last stream is done (`retire`) instead of after a fixed delay."""

    def __init__(self, runtime: Runtime) -> None:
        self.current = runtime
        self._users: Counter[int] = Counter()  # id(runtime) -> open streams using it
        self._idle: dict[int, asyncio.Event] = {}
        self._retiring: list[Runtime] = []  # replaced runtimes whose streams are still finishing

    def acquire(self) -> Runtime:
        rt = self.current
        self._users[id(rt)] += 1
        return rt

    def release(self, rt: Runtime) -> None:
        key = id(rt)
        self._users[key] -= 1
        if self._users[key] <= 0:
            del self._users[key]
            ev = self._idle.get(key)
            if ev is not None:
                ev.set()

    def users(self, rt: Runtime) -> int:
        return self._users.get(id(rt), 0)

    def swap(self, runtime: Runtime) -> Runtime:
        old, self.current = self.current, runtime
        return old

    async def retire(self, old: Runtime, max_wait_s: float) -> None:
        """Close what `old` does not share with the current runtime once no stream uses it (at most
        `max_wait_s` seconds later: a stream still open then finishes on closed parts, which fail open)."""
        key = id(old)
        self._retiring.append(old)
        if self.users(old):
            ev = self._idle.setdefault(key, asyncio.Event())
            try:
                await asyncio.wait_for(ev.wait(), max_wait_s)
            except TimeoutError:
                log.warning("runtime_retired_with_open_streams", streams=self.users(old), version=old.version)
            finally:
                self._idle.pop(key, None)
        if all(r is not old for r in self._retiring):  # closed by close_all meanwhile
            return
        self._retiring = [r for r in self._retiring if r is not old]
        if await old.close(keep=[self.current, *self._retiring]):
            await asyncio.to_thread(release_memory)

    async def close_all(self) -> None:
        """Shutdown: close every runtime still open (retiring ones first, then the current one)."""
        while self._retiring:
            await self._retiring.pop().close(keep=[self.current, *self._retiring])
        await self.current.close()


def release_memory() -> None:
    """Collect garbage and hand freed heap back to the OS (glibc `malloc_trim`; a no-op elsewhere). After a
    reload replaced the ONNX sessions, RSS otherwise stays at old + new (~80 MB more) although the old ones are
    freed: measured 281 MiB -> 203 MiB (the level before the reload) in benchmarks/RESULTS.md."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
