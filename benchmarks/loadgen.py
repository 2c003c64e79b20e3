"""A lean HTTP/1.1 load generator for the benchmarks: keep-alive connections driven by asyncio protocols.

The load generator shares the 2 cores with Envoy, the router and the upstreams, so its own CPU per request
shows up in every through-Envoy number. aiohttp spends roughly 0.3-0.5 ms of CPU per request here; this
client parses only the status line, the headers and a Content-Length or chunked body, which costs a
fraction of that. One connection per concurrent client; each sends its next request when the previous
answer is complete (closed loop), like the aiohttp loop it replaces.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class _Incomplete(Exception):
    pass


def _parse(buf: bytearray) -> tuple[Reply, int]:
    """One complete HTTP/1.1 response at the start of `buf` and its length; _Incomplete if not all there."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        raise _Incomplete
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    pos = end + 4
    if "content-length" in headers:
        stop = pos + int(headers["content-length"])
        if len(buf) < stop:
            raise _Incomplete
        return Reply(status, headers, bytes(buf[pos:stop])), stop
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                raise _Incomplete
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
            if size == 0:
                stop = buf.find(b"\r\n\r\n", eol)  # no trailers expected: the terminating empty line
                if stop < 0:
                    raise _Incomplete
                return Reply(status, headers, bytes(body)), stop + 4
            if len(buf) < eol + 2 + size + 2:
                raise _Incomplete
            body += buf[eol + 2 : eol + 2 + size]
            pos = eol + 2 + size + 2
    return Reply(status, headers, b""), pos  # no body (e.g. 204)


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Reply] | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None or self.waiter.done():
            return
        try:
            reply, used = _parse(self.buf)
        except _Incomplete:
            return
        except Exception as e:  # noqa: BLE001 - a malformed answer fails the request, not the loop
            self.waiter.set_exception(e)
            return
        del self.buf[:used]
        self.waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed before the answer was complete"))
        if not self.closed.done():
            self.closed.set_result(None)

    async def request(self, raw: bytes) -> Reply:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


def build_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"host: 127.0.0.1:{port}", f"content-length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, one per request
    statuses: dict[int, int] = field(default_factory=dict)
    header_true: int = 0  # answers whose `count_header` was "true"
    seconds: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def run(port: int, path: str, body: bytes, headers: dict[str, str], n: int, concurrency: int,
              count_header: str = "x-vsr-cache-hit", counts: Callable[[Reply], bool] | None = None) -> Result:
    """Send `n` identical POSTs over `concurrency` keep-alive connections (closed loop). `header_true` counts the
    answers whose `count_header` is "true", or those `counts(reply)` accepts when given."""
    loop = asyncio.get_running_loop()
    raw = build_request(port, path, body, headers)
    conns = [(await loop.create_connection(_Conn, "127.0.0.1", port))[1] for _ in range(concurrency)]
    res = Result()
    left = n

    async def client(c: _Conn) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            t = time.perf_counter()
            r = await c.request(raw)
            res.latencies.append(time.perf_counter() - t)
            res.statuses[r.status] = res.statuses.get(r.status, 0) + 1
            res.header_true += counts(r) if counts is not None else r.headers.get(count_header) == "true"

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(client(c) for c in conns))
    finally:
        res.seconds = time.perf_counter() - t0
        for c in conns:
            if c.transport is not None:
                c.transport.close()
    return res
