"""Every shipped Envoy config passes `envoy --mode validate`; the ORIGINAL_DST variant routes for real."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import eventually, start_stack, user
from semrouter.devstack import ROOT, _wait_tcp, envoy_binary

CONFIGS = sorted([*ROOT.glob("envoy/*.yaml"), *ROOT.glob("deploy/**/envoy*.yaml")])


def test_there_are_configs_to_check() -> None:
    names = {p.name for p in CONFIGS}
    assert {"envoy.yaml", "envoy-original-dst.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_envoy_validate(path: Path) -> None:
    r = subprocess.run([str(envoy_binary()), "--mode", "validate", "-c", str(path), "--use-dynamic-base-id",
                        "--log-level", "error"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout + r.stderr


@pytest.mark.e2e
def test_original_dst_variant_routes_by_destination_header(tmp_path: Path) -> None:
    stack, client = start_stack(tmp_path, {"signals.enabled": False, "cache.enabled": False,
                                           "routing.endpoint_selection": "original_dst"},
                                envoy_config=ROOT / "envoy" / "envoy-original-dst.yaml")
    try:
        r = client.chat(user("What is the derivative of x^3?"))
        assert r.status == 200 and r.headers["x-demo-model"] == "qwen3-32b"
        r = client.chat(user("hello"))
        assert r.status == 200 and r.headers["x-demo-model"] == "llama-3.1-8b"
        r = client.chat(user("hello", model="qwen3-32b"))
        assert r.headers["x-demo-model"] == "qwen3-32b"
    finally:
        stack.stop()


@pytest.mark.e2e
def test_failing_endpoint_is_avoided_then_readmitted(tmp_path: Path) -> None:
    """ORIGINAL_DST: the router stops sending to an endpoint that answers 500 and probes it after cool-down."""
    import json
    import time
    import urllib.request

    import yaml

    from semrouter.devstack import Stack, free_port

    cfg = yaml.safe_load((ROOT / "config" / "semrouter.yaml").read_text())
    cfg["models"][1]["endpoints"] = [{"address": "127.0.0.1", "port": 8002}, {"address": "127.0.0.1", "port": 8003}]
    cfg["routing"].update(endpoint_selection="original_dst", endpoint_fail_threshold=2, endpoint_cooldown_seconds=4)
    cfg["signals"] = {"enabled": False}
    cfg["cache"] = {"enabled": False}
    src = tmp_path / "router.yaml"
    src.write_text(yaml.safe_dump(cfg))
    # the endpoint added to the router config goes on Envoy's ORIGINAL_DST allow-list too (docs/SECURITY.md)
    shipped = (ROOT / "envoy" / "envoy-original-dst.yaml").read_text()
    assert "(8001|8002)" in shipped
    envoy_cfg = tmp_path / "envoy-original-dst.yaml"
    envoy_cfg.write_text(shipped.replace("(8001|8002)", "(8001|8002|8003)"))
    ports = {p: free_port() for p in (8801, 9901, 50051, 50052, 8001, 8002, 8003, 9190)}
    stack = Stack(router_config=src, envoy_config=envoy_cfg, ports=ports,
                  workdir=tmp_path / "stack", log_dir=tmp_path / "logs")
    from conftest import Client

    client = Client(ports[8801])
    bad = str(ports[8003])

    def fault(status: int) -> None:
        req = urllib.request.Request(f"http://127.0.0.1:{bad}/_demo/fault", data=json.dumps({"status": status}).encode(),
                                     headers={"content-type": "application/json"})
        urllib.request.urlopen(req, timeout=5).read()

    def ports_hit(n: int) -> list[str]:
        return [client.chat(user("ping", model="qwen3-32b")).headers.get("x-demo-port", "") for _ in range(n)]

    with stack:
        assert bad in ports_hit(30)  # both endpoints serve at first
        fault(500)
        # drive traffic until the failing endpoint has answered (with 500) fail_threshold = 2 times: the
        # weighted pick makes "how many of N requests hit it" random, so a fixed N could leave it admitted
        failed = 0
        for _ in range(200):
            failed += ports_hit(1).count(bad)
            if failed >= 2:
                break
        assert failed >= 2
        # answers reach the router on the observer stream, just after the client has them: once it has
        # seen the failures, the endpoint is skipped for the cool-down
        assert eventually(lambda: ports_hit(10).count(bad) == 0, timeout=3)
        assert ports_hit(30).count(bad) == 0
        fault(0)
        time.sleep(4.1)  # cool-down over: it is probed again and, now healthy, re-admitted
        assert bad in ports_hit(60)


def test_a_process_that_dies_before_it_listens_is_reported_with_how_and_its_log(tmp_path: Path) -> None:
    """The stack's start-up wait says whether a process exited or was killed, and shows its log's tail."""
    log = tmp_path / "p.log"
    with open(log, "wb") as out:
        p = subprocess.Popen([sys.executable, "-c", "import os, signal; print('starting', flush=True); "
                              "os.kill(os.getpid(), signal.SIGTERM)"], stdout=out, stderr=subprocess.STDOUT)
        p.wait(timeout=30)
    with pytest.raises(RuntimeError, match=r"router was killed by SIGTERM before it was ready; log tail: starting"):
        _wait_tcp(1, p, "router", 5, log)
    q = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    q.wait(timeout=30)
    with pytest.raises(RuntimeError, match=r"exited with code 3 before"):
        _wait_tcp(1, q, "router", 5)


def test_stack_children_die_with_their_parent(tmp_path: Path) -> None:
    """A process the stack starts gets SIGTERM when the process that started it dies (no orphans)."""
    parent = (
        "import subprocess, sys\n"
        "from semrouter.devstack import _dying_with_parent\n"
        "p = subprocess.Popen(_dying_with_parent(['/bin/sleep', '60']))\n"
        "print(p.pid, flush=True)\n"
        "sys.stdin.readline()\n"  # exit when the test says so
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    child = 0
    try:
        child = int(proc.stdout.readline())  # type: ignore[union-attr]

        def alive() -> bool:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return False
            with open(f"/proc/{child}/stat") as f:  # a zombie waiting for init to reap it counts as gone
                return f.read().split(")")[-1].split()[0] != "Z"

        assert eventually(lambda: alive() and "sleep" in open(f"/proc/{child}/cmdline").read(), timeout=10)
        proc.communicate("\n", timeout=10)
        assert eventually(lambda: not alive(), timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, 9)
