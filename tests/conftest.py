"""Shared fixtures: a real stack (Envoy + router + demo upstreams) on free loopback ports."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from semrouter.devstack import ROOT, Stack, free_port

SHIPPED_PORTS = (8801, 9901, 50051, 50052, 8001, 8002, 9190)


def eventually(pred: Callable[[], bool], timeout: float = 10.0, every: float = 0.05) -> bool:
    """Poll `pred` until it holds or `timeout` passes. For effects that land just after the client has its
    answer (observer streams, background stores) instead of a fixed sleep that a busy CI machine outlasts."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every)


def settled(read: Callable[[], int], quiet: float = 0.25, timeout: float = 10.0) -> int:
    """A counter's value once it has stopped moving for `quiet` seconds (Envoy's stream counters move a
    little after the client has its answer: the observer stream opens at the answer)."""
    deadline = time.monotonic() + timeout
    prev = read()
    while True:
        time.sleep(quiet)
        cur = read()
        if cur == prev or time.monotonic() > deadline:
            return cur
        prev = cur


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """A tiny HTTP client for the Envoy listener (keeps tests free of extra dependencies)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30) -> Reply:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            c.close()

    def chat(self, payload: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> Reply:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.request("POST", "/v1/chat/completions", body,
                            {"content-type": "application/json", **(headers or {})})


def user(text: str, model: str = "auto", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def start_stack(tmp: Path, overrides: dict[str, Any] | None = None,
                envoy_config: Path | None = None) -> tuple[Stack, Client]:
    ports = {p: free_port() for p in SHIPPED_PORTS}
    stack = Stack(ports=ports, overrides=overrides or {}, workdir=tmp, log_dir=tmp / "logs",
                  envoy_config=envoy_config or ROOT / "envoy" / "envoy.yaml")
    stack.start()
    return stack, Client(ports[8801])


@pytest.fixture(scope="module")
def keyword_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Client]]:
    """The shipped configs with model-based signals and the cache off: keyword routing only."""
    stack, client = start_stack(tmp_path_factory.mktemp("kwstack"),
                                {"signals.enabled": False, "cache.enabled": False,
                                 "server.max_body_bytes": 65536})
    try:
        yield stack, client
    finally:
        stack.stop()


def wait_hit(client: Client, payload: dict, headers: dict[str, str], timeout: float = 10.0) -> Reply:
    """Stores happen off the response path: ask again until the entry is there."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.chat(payload, headers)
        if r.headers.get("x-vsr-cache-hit") == "true" or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def store_in_cache(client: Client, text: str, headers: dict[str, str]) -> None:
    """Send `text` as the only user message and wait until the cache serves it back (the entry is stored)."""
    client.chat(user(text), headers)
    assert wait_hit(client, user(text), headers).headers.get("x-vsr-cache-hit") == "true"


def served_from_cache(client: Client, text: str, headers: dict[str, str]) -> bool:
    """True when `text` is answered from the cache; False when it was answered upstream (any other answer fails)."""
    r = client.chat(user(text), headers)
    assert r.status == 200
    if r.headers.get("x-vsr-cache-hit") == "true":
        return True
    assert "x-demo-model" in r.headers  # answered by the demo upstream
    return False
