"""Every shipped Envoy config passes `envoy --mode validate`; the ORIGINAL_DST variant routes for real."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import start_stack, user
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
