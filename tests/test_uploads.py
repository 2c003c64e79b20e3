"""The per-client upload slots (server/uploads.py): the address Envoy sends, and the bound."""

from __future__ import annotations

import pytest
from google.protobuf.struct_pb2 import Struct

from semrouter.server.uploads import UploadSlots, client_address


def _attrs(value: str) -> dict[str, Struct]:
    s = Struct()
    s.update({"source.address": value})
    return {"envoy.filters.http.ext_proc": s}


@pytest.mark.parametrize("value, want", [
    ("10.0.0.7:51234", "10.0.0.7"),
    ("[2001:db8::1]:443", "2001:db8::1"),
    ("2001:db8::1", "2001:db8::1"),  # no port: kept
    ("10.0.0.7", "10.0.0.7"),
    ("", None),
])
def test_client_address_drops_the_port(value: str, want: str | None) -> None:
    assert client_address(_attrs(value)) == want


def test_no_attribute_means_no_address() -> None:
    assert client_address({}) is None
    assert client_address({"other.filter": Struct()}) is None


def test_slots_bound_each_address_alone_and_come_back() -> None:
    slots = UploadSlots()
    assert all(slots.acquire("a", 2) for _ in range(2))
    assert not slots.acquire("a", 2)  # a third for the same address is refused, nothing taken
    assert slots.held("a") == 2
    assert slots.acquire("b", 2)  # another address has its own slots
    slots.release("a")
    assert slots.acquire("a", 2)
    for _ in range(2):
        slots.release("a")
    slots.release("b")
    assert len(slots) == 0 and slots.held("a") == 0  # nothing kept for addresses without a slot
    assert slots.acquire("a", 0) and slots.held("a") == 0  # 0: no bound, nothing counted
