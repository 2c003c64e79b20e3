"""The router process: a grpc.aio server with ext_proc and health on one port, reload and shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import grpc
import structlog
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from semrouter.config import ConfigError, load_config
from semrouter.config.schema import Config
from semrouter.decision.endpoints import EndpointHealth
from semrouter.runtime import RuntimeHolder, Shared, build_runtime
from semrouter.admin.service import add_admin_service, admin_token_for
from semrouter.server.admin_backend import RouterAdminBackend
from semrouter.server.stream import ExternalProcessor
from semrouter.telemetry.metrics import MetricsServer
from semrouter.telemetry.tracing import Tracer

log = structlog.get_logger("semrouter.server")

_GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
]


class RouterServer:
    """Owns the gRPC server, the current runtime and the reload logic."""

    def __init__(self, config_path: Path | None, holder: RuntimeHolder, shared: Shared) -> None:
        self.config_path = config_path
        self.holder = holder
        self.shared = shared
        self.server = grpc.aio.server(options=_GRPC_OPTIONS)
        self.health = health.aio.HealthServicer()
        self._reload_lock = asyncio.Lock()
        self.port = 0
        self.metrics_server: MetricsServer | None = None

    @classmethod
    async def create(cls, cfg: Config, config_path: Path | None = None) -> RouterServer:
        t = cfg.tracing
        shared = Shared(health=EndpointHealth(fail_threshold=cfg.routing.endpoint_fail_threshold,
                                              cooldown_s=cfg.routing.endpoint_cooldown_seconds),
                        tracer=Tracer.from_settings(enabled=t.enabled, otlp_endpoint=t.otlp_endpoint,
                                                    service_name=t.service_name))
        rt = await build_runtime(cfg, shared)
        self = cls(config_path, RuntimeHolder(rt), shared)
        pb_grpc.add_ExternalProcessorServicer_to_server(ExternalProcessor(self.holder), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        token = admin_token_for(cfg.server.listen, cfg.server.admin_token, os.environ)
        add_admin_service(self.server, RouterAdminBackend(self), token)
        self.port = self.server.add_insecure_port(cfg.server.listen)
        if self.port == 0:
            raise OSError(f"server.listen: cannot bind {cfg.server.listen}")
        return self

    async def start(self) -> None:
        listen = self.holder.current.config.server.metrics_listen
        if listen:
            self.metrics_server = self.shared.metrics.start_http_server(listen)
        await self.server.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("envoy.service.ext_proc.v3.ExternalProcessor", health_pb2.HealthCheckResponse.SERVING)
        log.info("router_started", listen=self.holder.current.config.server.listen, port=self.port,
                 config_version=self.holder.current.version)

    async def reload(self) -> tuple[bool, str, str]:
        """Validate and build the new config, then swap. On any error the old runtime keeps serving."""
        async with self._reload_lock:
            if self.config_path is None:
                return False, "no config file to reload from", self.holder.current.version
            try:
                cfg = load_config(self.config_path)
                rt = await build_runtime(cfg, self.shared)
            except (ConfigError, OSError, ValueError) as e:
                log.error("config_reload_rejected", error=str(e))
                self.shared.metrics.record_config_reload(False)
                return False, str(e), self.holder.current.version
            old = self.holder.swap(rt)
            self.shared.metrics.record_config_reload(True)
            log.info("config_reloaded", old_version=old.version, new_version=rt.version)
            asyncio.get_running_loop().call_later(30.0, lambda: asyncio.ensure_future(old.close()))
            return True, "", rt.version

    async def stop(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.holder.current.close()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        self.shared.tracer.shutdown()
        log.info("router_stopped")


async def watch_config(srv: RouterServer, path: Path, every_s: float) -> None:
    """Reload when the file's mtime or size changes (editors replace files; both are checked)."""

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
        if now is not None and now != last:
            last = now
            await srv.reload()


async def serve(cfg: Config, config_path: Path | None) -> None:
    srv = await RouterServer.create(cfg, config_path)
    await srv.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(srv.reload()))
    watcher = None
    if config_path is not None and cfg.server.watch_config_seconds > 0:
        watcher = asyncio.create_task(watch_config(srv, config_path, cfg.server.watch_config_seconds))
    try:
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        await srv.stop(cfg.server.grace_seconds)
