"""Response headers and body: decision headers to the client, health feedback, cache store."""

from __future__ import annotations

import json
import time

import structlog
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb

from semrouter.response.apis import to_completion
from semrouter.response.usage import usage_from_body
from semrouter.runtime import Runtime
from semrouter.server import mutations as mut
from semrouter.server.state import StreamState

log = structlog.get_logger("semrouter.response")

MAX_CAPTURE_BYTES = 8 * 1024 * 1024  # answers larger than this are passed through but not cached


def on_response_headers(rt: Runtime, st: StreamState, msg: pb.HttpHeaders) -> pb.ProcessingResponse:
    """The answer's headers (observer stream, or the request's own stream in a single-filter config) → CONTINUE with
    `st.result_headers` (Envoy ignores it on an observer stream). Records status, content type and content-length
    in `st.response`; for a request the router forwarded (`st.routed`), the endpoint's health (ok below 500, the
    latency since forwarding), and finishes the answer when the headers end it. Never raises for odd headers
    (a non-numeric :status is 0)."""
    h = mut.header_map(msg.headers)
    cap = st.response
    try:
        cap.status = int(h.get(":status", "0"))
    except ValueError:
        cap.status = 0
    cap.content_type = h.get("content-type", "")
    if h.get("content-length", "").isdigit():
        cap.expected_size = int(h["content-length"])
    r = st.routed
    if r is not None:
        now = time.monotonic()
        rt.shared.health.record(r.endpoint, ok=cap.status < 500, latency_s=now - r.forwarded_at)
        if msg.end_of_stream:
            _finish(rt, st)
    return mut.continue_response_headers(st.result_headers)


def on_response_body(rt: Runtime, st: StreamState, msg: pb.HttpBody) -> pb.ProcessingResponse:
    """One chunk of the answer → an empty CONTINUE. Captures up to MAX_CAPTURE_BYTES (8 MiB; beyond it the answer
    passes through uncounted and uncached) for a forwarded request; at end of stream, or once content-length bytes
    are in, hands the answer on once: usage and latency metrics, response owner (Responses), cache store in the
    background for a 2xx."""
    cap = st.response
    if cap.first_byte_at is None:
        cap.first_byte_at = time.monotonic()
    cap.size += len(msg.body)
    if st.routed is not None and not cap.overflow:
        if cap.size > MAX_CAPTURE_BYTES:
            cap.overflow = True
            cap.chunks.clear()
        else:
            cap.chunks.append(msg.body)
    # Envoy sends a JSON answer as its bytes and then an empty end-of-stream message: once content-length bytes
    # are in, the answer is complete (an observer stream can end here, one message earlier).
    if msg.end_of_stream or (cap.expected_size is not None and cap.size >= cap.expected_size):
        _finish(rt, st)
    return mut.continue_response_body()


def _finish(rt: Runtime, st: StreamState) -> None:
    """The upstream answer is complete: hand it to the cache (off the response path). Runs once per answer."""
    r, cap = st.routed, st.response
    if cap.finished:
        return
    cap.finished = True
    if r is None:
        return
    m, model = rt.shared.metrics, r.decision.model
    now = time.monotonic()
    body, content_type = b"".join(cap.chunks), cap.content_type
    if r.api != "chat" and not cap.overflow and cap.status < 400:
        # Responses / Messages answers are read in their own shape into the one internal answer (a
        # chat.completion): usage comes from it and the cache stores it (None: incomplete, not stored).
        answer = to_completion(r.api, content_type, body)
        body, content_type = (json.dumps(answer).encode(), "application/json") if answer else (b"", "")
        if answer and r.api == "responses" and answer["id"].startswith("resp_"):  # where a follow-up must go
            rt.shared.response_owners.put(r.tenant, answer["id"], model, r.endpoint)
    if cap.status >= 400:
        m.record_error(model, f"upstream_{cap.status}")
    else:
        if r.stream and cap.first_byte_at is not None:
            m.observe_ttft(model, cap.first_byte_at - r.forwarded_at)
        usage = usage_from_body(content_type, body) if not cap.overflow and body else None
        m.observe_completion(model, now - r.forwarded_at, usage[1] if usage else None)
        if usage:
            m.record_usage(model, *usage)
    if rt.cache is not None and r.cache_key is not None and not cap.overflow and 200 <= cap.status < 300 and body:
        rt.cache.store_in_background(r.cache_key, r.decision.category, cap.status, content_type,
                                     body, r.has_pii, r.embedding, r.language)
    cap.chunks = []
    log.debug("response_complete", request_id=st.request_id, status=cap.status, model=r.decision.model,
              total_ms=round((time.monotonic() - st.started_at) * 1000, 3))
