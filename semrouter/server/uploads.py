"""Request bodies being received, counted per client address: one client cannot hold Envoy's memory with uploads.

Envoy buffers each request body for the router (ext_proc BUFFERED, up to `per_connection_buffer_limit_bytes`, a
little over `server.max_body_bytes`) before the router sees it, and its overload manager answers every client 503
once its heap is 95% full. A client that opens many requests, sends most of each body and then waits (or sends a
byte now and then, so no idle timeout fires) held that memory for `request_timeout` (120 s): 18 uploads of 7 MiB
filled a 128 MiB heap bound and everyone got 503 (benchmarks/RESULTS.md, review11 and review12). Envoy has no bound
per client address, but the router sees every request's headers before its body: a request whose body is still to
come takes a slot of its client's address (Envoy's `source.address` attribute, the decision filter's
`request_attributes`), given back when the body arrives or the stream ends. Past `server.max_uploads_per_client`
slots the request is refused at its headers (429 `too_many_uploads`, retry-after 1), before Envoy buffers any of
its body. An ordinary client holds a slot for the milliseconds its body takes to arrive.

The address is the downstream peer as Envoy sees it (the shipped configs set `use_remote_address: true` with no
trusted hops: a client's own `x-forwarded-for` never names its address): behind a proxy or load balancer that does
not keep the client address (no PROXY protocol, no `xff_num_trusted_hops` for it), all its clients share one address
and one set of slots. No attribute (an Envoy config without `request_attributes`): no bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SOURCE_ATTRIBUTE = "source.address"


def client_address(attributes: Mapping[str, Any]) -> str | None:
    """The client's IP address (without its port) from a ProcessingRequest's `attributes` (filter name -> Struct
    of the `request_attributes` asked for), or None when Envoy sent none. "10.0.0.7:51234" -> "10.0.0.7",
    "[2001:db8::1]:443" -> "2001:db8::1"; a value without a port is kept as it is."""
    for struct in attributes.values():
        fields = getattr(struct, "fields", None)
        if fields is None or SOURCE_ATTRIBUTE not in fields:
            continue
        value = fields[SOURCE_ATTRIBUTE].string_value
        if not value:
            return None
        if value.startswith("["):  # [v6]:port
            return value[1:].partition("]")[0] or None
        host, sep, port = value.rpartition(":")
        return host if sep and port.isdigit() and ":" not in host else value
    return None


class UploadSlots:
    """Client address -> requests whose body is still to arrive. Event-loop only (no locks): the request path is
    async, and acquire/release are plain dict updates. Addresses without a slot take no memory."""

    def __init__(self) -> None:
        self._held: dict[str, int] = {}

    def acquire(self, client: str, limit: int) -> bool:
        """Take a slot for `client` unless it holds `limit` already (then False, nothing taken). limit 0: no bound
        (True, nothing counted)."""
        if limit <= 0:
            return True
        n = self._held.get(client, 0)
        if n >= limit:
            return False
        self._held[client] = n + 1
        return True

    def release(self, client: str) -> None:
        """Give back one slot of `client` (one taken by `acquire`)."""
        n = self._held.get(client, 0) - 1
        if n > 0:
            self._held[client] = n
        else:
            self._held.pop(client, None)

    def held(self, client: str) -> int:
        """Slots `client` holds now."""
        return self._held.get(client, 0)

    def __len__(self) -> int:
        """Client addresses holding at least one slot."""
        return len(self._held)
