"""A minimal HTTP/2 cleartext (prior knowledge) client for tests: one request, with request trailers if asked,
which neither the stdlib nor curl's command line can send. Headers go out as HPACK literals (no Huffman, no
index); the answer's headers are not decoded (Envoy compresses them), only its status class and body are read."""

from __future__ import annotations

import socket
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def _int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """HPACK integer (RFC 7541 5.1) with `first`'s high bits in the first byte."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = [first | limit], value - limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes([*out, value])


def _block(headers: list[tuple[str, str]]) -> bytes:
    """Literal header fields without indexing, new names, no Huffman (RFC 7541 6.2.2)."""
    out = b""
    for name, value in headers:
        n, v = name.encode(), value.encode()
        out += b"\x00" + _int(len(n), 7) + n + _int(len(v), 7) + v
    return out


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def request(port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"",
            trailers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, bytes]:
    """Send one request on stream 1 (body in 16 KiB DATA frames, then `trailers` as a last HEADERS frame) and
    read its answer. Returns (the status's first digit times 100, e.g. 200 or 400; 0 when the stream was reset,
    the body). Raises OSError when the connection fails."""
    pseudo = [(":method", method), (":scheme", "http"), (":path", path), (":authority", "localhost")]
    out = PREFACE + _frame(SETTINGS, 0, 0, b"")
    last_is_headers = not body and not trailers
    out += _frame(HEADERS, END_HEADERS | (END_STREAM if last_is_headers else 0), 1,
                  _block(pseudo + list(headers.items())))
    chunks = [body[i:i + 16384] for i in range(0, len(body), 16384)]
    for i, chunk in enumerate(chunks):
        end = i == len(chunks) - 1 and not trailers
        out += _frame(DATA, END_STREAM if end else 0, 1, chunk)
    if trailers:
        out += _frame(HEADERS, END_HEADERS | END_STREAM, 1, _block(list(trailers.items())))
    status, data = 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        # the body must fit the peer's initial windows (64 KiB): enough for these tests
        assert len(body) < 65535, "body over HTTP/2's initial flow-control window"
        s.sendall(out)
        buf = b""
        while True:
            while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
                more = s.recv(65536)
                if not more:
                    return status, data
                buf += more
            size = int.from_bytes(buf[:3], "big")
            kind, flags, stream = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            payload, buf = buf[9:9 + size], buf[9 + size:]
            if kind == SETTINGS and not flags & ACK:
                s.sendall(_frame(SETTINGS, ACK, 0, b""))
            elif kind == PING and not flags & ACK:
                s.sendall(_frame(PING, ACK, 0, payload))
            elif kind == HEADERS and stream == 1 and not status:
                status = _status(payload)
            elif kind == DATA and stream == 1:
                data += payload
            elif kind in (RST_STREAM, GOAWAY) and stream in (0, 1):
                return status, data
            if stream == 1 and kind in (DATA, HEADERS) and flags & END_STREAM:
                return status, data


def _status(block: bytes) -> int:
    """The status from the answer's first header field, which Envoy sends first as an indexed :status (static
    table 8-14: 200, 204, 206, 304, 400, 404, 500) or a literal with indexed name: its class (x100) either way."""
    first = block[0]
    if first & 0x80:  # indexed
        return {8: 200, 9: 200, 10: 200, 11: 300, 12: 400, 13: 400, 14: 500}.get(first & 0x7F, 0)
    # literal with the name :status (index 8-14) and a value: the value's first digit if not Huffman-coded
    length_byte = block[1]
    value = block[2:2 + (length_byte & 0x7F)]
    if not length_byte & 0x80:
        return int(value[:1]) * 100
    # Huffman-coded (RFC 7541 Appendix B): '0'-'2' are the 5-bit codes 00000-00010, '3'-'9' 6-bit 011001-011111
    if value[0] >> 3 <= 2:
        return (value[0] >> 3) * 100
    return (3 + (value[0] >> 2) - 0b011001) * 100
