"""Every shipped Envoy config passes `envoy --mode validate`; the ORIGINAL_DST variant routes for real."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import eventually, start_stack, user
from semrouter.devstack import ROOT, envoy_binary

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
    ports = {p: free_port() for p in (8801, 9901, 50051, 8001, 8002, 8003, 9190)}
    stack = Stack(router_config=src, envoy_config=ROOT / "envoy" / "envoy-original-dst.yaml", ports=ports,
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
