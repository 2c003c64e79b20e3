"""The router process: ext_proc and health on one gRPC port (Envoy's), the admin API on another, reload and
shutdown. The admin API never shares the ext_proc port, so no route in Envoy's data plane can reach it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from operator import attrgetter
from pathlib import Path

import grpc
import structlog
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from semrouter.config import ConfigError
from semrouter.config.load import config_from_text
from semrouter.config.schema import Config
from semrouter.decision.endpoints import EndpointHealth
from semrouter.runtime import RuntimeHolder, Shared, build_runtime
from semrouter.admin.service import add_admin_service, admin_token_for
from semrouter.server.admin_backend import RouterAdminBackend
from semrouter.server.stream import ExternalProcessor
from semrouter.server.inflight import InflightTable
from semrouter.telemetry.metrics import Metrics, MetricsServer
from semrouter.telemetry.tracing import Tracer

log = structlog.get_logger("semrouter.server")

_GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
]
RETIRE_MAX_WAIT_S = 30.0  # a replaced runtime is closed when its last stream ends, or after this long


class RouterServer:
    """Owns the gRPC server, the current runtime and the reload logic."""

    def __init__(self, config_path: Path | None, holder: RuntimeHolder, shared: Shared) -> None:
        self.config_path = config_path
        self.holder = holder
        self.shared = shared
        self.started_config = holder.current.config  # what the restart-only settings were read from
        self.server = grpc.aio.server(options=_GRPC_OPTIONS)
        self.admin_server: grpc.aio.Server | None = None
        self.health = health.aio.HealthServicer()
        self._reload_lock = asyncio.Lock()
        self._serving_digest = ""  # sha256 of the config file bytes now serving ("" = not from the file)
        self._invalid_digest, self._invalid_reason = "", ""  # the last file that failed validation
        self._background: set[asyncio.Task[None]] = set()
        self.port = 0
        self.admin_port = 0
        self.metrics_server: MetricsServer | None = None

    @classmethod
    async def create(cls, cfg: Config, config_path: Path | None = None) -> RouterServer:
        t = cfg.tracing
        metrics = Metrics()
        shared = Shared(health=EndpointHealth(fail_threshold=cfg.routing.endpoint_fail_threshold,
                                              cooldown_s=cfg.routing.endpoint_cooldown_seconds),
                        metrics=metrics,
                        tracer=Tracer.from_settings(enabled=t.enabled, otlp_endpoint=t.otlp_endpoint,
                                                    service_name=t.service_name),
                        inflight=InflightTable(cfg.server.max_inflight, cfg.server.inflight_max_age_seconds,
                                               on_drop=metrics.record_inflight_drop))
        rt = await build_runtime(cfg, shared)
        self = cls(config_path, RuntimeHolder(rt), shared)
        holder = self.holder
        metrics.watch(lambda: len(shared.inflight),
                      lambda: holder.current.cache.state() if holder.current.cache is not None else {})
        if config_path is not None:
            try:
                self._serving_digest = hashlib.sha256(config_path.read_bytes()).hexdigest()
            except OSError:
                pass
        pb_grpc.add_ExternalProcessorServicer_to_server(ExternalProcessor(self.holder), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = self.server.add_insecure_port(cfg.server.listen)
        if self.port == 0:
            raise OSError(f"server.listen: cannot bind {cfg.server.listen}")
        if cfg.server.admin_listen is not None:
            admin_token_for(cfg.server.admin_listen, cfg.server.admin_token, os.environ)  # raises when one is needed
            self.admin_server = grpc.aio.server(options=_GRPC_OPTIONS)
            listen = cfg.server.admin_listen  # read at start-up: a reload cannot move it (reload() refuses)
            add_admin_service(self.admin_server, RouterAdminBackend(self),
                              lambda: admin_token_for(listen, holder.current.config.server.admin_token, os.environ))
            self.admin_port = self.admin_server.add_insecure_port(cfg.server.admin_listen)
            if self.admin_port == 0:
                raise OSError(f"server.admin_listen: cannot bind {cfg.server.admin_listen}")
        return self

    async def start(self) -> None:
        listen = self.holder.current.config.server.metrics_listen
        if listen:
            self.metrics_server = self.shared.metrics.start_http_server(listen)
        await self.server.start()
        if self.admin_server is not None:
            await self.admin_server.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("envoy.service.ext_proc.v3.ExternalProcessor", health_pb2.HealthCheckResponse.SERVING)
        log.info("router_started", listen=self.holder.current.config.server.listen, port=self.port,
                 admin_listen=self.holder.current.config.server.admin_listen, admin_port=self.admin_port,
                 config_version=self.holder.current.version)
        c = self.holder.current.config.cache
        if c.enabled and c.tenant_from == "credential" and not os.environ.get(c.tenant_key_env):
            log.warning("tenant_hash_unkeyed", hint=f"set {c.tenant_key_env} to a random secret so that cache tenant "
                        "labels cannot be guessed from weak credentials (docs/SECURITY.md, Tenants)")

    async def reload(self, *, force: bool = False) -> tuple[bool, str, str]:
        """Validate and build the config file, then swap; returns (applied, message, serving version).

        One change reloads once: the file's bytes are hashed, and bytes that are already serving (or were
        already rejected as invalid) are not loaded again, so SIGHUP, the file watcher and the admin RPC may all
        fire for one edit. `force` rebuilds anyway. A build failure (e.g. a missing `model_dir`) is retried on
        the next request, since the cause may be outside the file. Any failure is a logged, counted rejection;
        the old runtime keeps serving. Never raises (except cancellation)."""
        async with self._reload_lock:
            version = self.holder.current.version
            if self.config_path is None:
                return False, "no config file to reload from", version
            try:
                raw = await asyncio.to_thread(self.config_path.read_bytes)
            except OSError as e:
                return self._rejected(f"{self.config_path}: cannot read: {e.strerror}", "read")
            digest = hashlib.sha256(raw).hexdigest()
            if not force and digest == self._serving_digest:
                log.info("config_reload_skipped", reason="unchanged", config_version=version)
                return True, "unchanged", version
            if not force and digest == self._invalid_digest:
                log.info("config_reload_skipped", reason="already rejected", config_version=version)
                return False, self._invalid_reason, version
            try:
                cfg = config_from_text(raw.decode("utf-8", "replace"), str(self.config_path))
                _check_reloadable(self.holder.current.config, cfg)
            except (ConfigError, ValueError) as e:
                self._invalid_digest, self._invalid_reason = digest, str(e)
                return self._rejected(str(e), "invalid")
            try:
                rt = await build_runtime(cfg, self.shared, reuse=self.holder.current)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # any part that cannot be built: reject, keep serving
                return self._rejected(f"{type(e).__name__}: {e}", "build")
            pending = restart_only_changes(self.started_config, cfg)
            old = self.holder.swap(rt)
            self._serving_digest, self._invalid_digest = digest, ""
            self.shared.metrics.record_config_reload(True)
            log.info("config_reloaded", old_version=old.version, new_version=rt.version,
                     reused_signals=rt.analyzer is not None and rt.analyzer is old.analyzer,
                     reused_cache=rt.cache is not None and rt.cache is old.cache)
            # the old runtime is retired whatever the note says (returning before this leaked its analyzer and
            # cache on every reload once a restart-only key had changed)
            task = asyncio.create_task(self.holder.retire(old, RETIRE_MAX_WAIT_S), name="semrouter-retire")
            self._background.add(task)
            task.add_done_callback(self._retired)
            if pending:
                log.warning("config_reload_needs_restart", keys=pending)
                return True, "applied, except (they take effect at the next restart): " + ", ".join(pending), \
                    rt.version
            return True, "", rt.version

    def _rejected(self, reason: str, stage: str) -> tuple[bool, str, str]:
        log.error("config_reload_rejected", stage=stage, error=reason)
        self.shared.metrics.record_config_reload(False)
        return False, reason, self.holder.current.version

    def _retired(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("runtime_close_failed", error=repr(task.exception()))

    async def stop(self, grace: float | None = None) -> None:
        """Drain and close everything. `grace`: seconds open streams may still finish; None = the serving
        config's server.grace_seconds (a reloaded value applies: shutdown read the start-up file's before)."""
        if grace is None:
            grace = self.holder.current.config.server.grace_seconds
        await self.health.enter_graceful_shutdown()
        if self.admin_server is not None:
            await self.admin_server.stop(0)
        await self.server.stop(grace)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.holder.close_all()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        self.shared.tracer.shutdown()
        log.info("router_stopped")


_START_ONLY = ("listen", "admin_listen", "metrics_listen")  # server.* addresses bound once, at start-up


# Settings read once, when the process starts (the shared endpoint health, the in-flight table, the tracer, the
# log setup, the file watcher): a reload applies every other change and names these as waiting for a restart.
_RESTART_ONLY = ("server.max_inflight", "server.inflight_max_age_seconds", "server.watch_config_seconds",
                 "routing.endpoint_fail_threshold", "routing.endpoint_cooldown_seconds", "logging", "tracing")


def restart_only_changes(old: Config, new: Config) -> list[str]:
    """The dotted keys of `_RESTART_ONLY` whose value differs between the running config and `new`: a reload
    applies the rest of `new` and reports these (its message, a warning log line) instead of claiming them."""
    return [k for k in _RESTART_ONLY if attrgetter(k)(old) != attrgetter(k)(new)]


def _check_reloadable(old: Config, new: Config) -> None:
    """Raise ValueError (naming the key) when `new` changes what a reload cannot apply to the running process: the
    addresses it listens on (a reload that moved the admin API or the metrics off a public interface would report
    success while the old socket stayed open), or a non-loopback admin API left without a token."""
    for key in _START_ONLY:
        was, now = getattr(old.server, key), getattr(new.server, key)
        if was != now:
            raise ValueError(f"server.{key}: {now!r} needs a restart (the running router listens on {was!r}); "
                             "restart it to apply this file, or put the old value back to reload the rest")
    if new.server.admin_listen is not None:
        admin_token_for(new.server.admin_listen, new.server.admin_token, os.environ)


async def watch_config(srv: RouterServer, path: Path, every_s: float) -> None:
    """Reload when the file's mtime or size changes (editors replace files; both are checked). Runs until
    cancelled: a failed reload (or anything else) is logged and the next change is still picked up."""

    def stamp() -> tuple[float, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return st.st_mtime, st.st_size

    last = stamp()
    while True:
        await asyncio.sleep(every_s)
        now = stamp()
        if now is None or now == last:
            continue
        last = now
        try:
            await srv.reload()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # reload() reports its own failures; this keeps the watcher alive regardless
            log.error("config_watch_failed", error=repr(e))


async def _reload_on_signal(srv: RouterServer) -> None:
    try:
        await srv.reload()
    except Exception as e:  # never "Task exception was never retrieved"
        log.error("config_reload_failed", error=repr(e))


async def serve(cfg: Config, config_path: Path | None) -> None:
    srv = await RouterServer.create(cfg, config_path)
    await srv.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    sighup: set[asyncio.Task[None]] = set()

    def on_sighup() -> None:
        task = asyncio.create_task(_reload_on_signal(srv), name="semrouter-sighup-reload")
        sighup.add(task)
        task.add_done_callback(sighup.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    watcher = None
    if config_path is not None and cfg.server.watch_config_seconds > 0:
        watcher = asyncio.create_task(watch_config(srv, config_path, cfg.server.watch_config_seconds))
    try:
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        await srv.stop()
