"""The ext_proc `Process` loop: one gRPC stream per HTTP request, a small state machine per stream.

Phases arrive in order: request_headers → request_body → response_headers → response_body (trailers
if configured). Every phase gets exactly one answer; an immediate response ends the stream. With the
shipped Envoy configs the response phases come on a second stream instead, from an ext_proc filter in
observability mode: it carries the answer (whose headers Envoy gives the router-minted join nonce and the
request's x-request-id; older configs sent the request headers first), Envoy reads no replies, and the stream
is joined to what the request stream decided (server/inflight.py). Answers without the join nonce (cache hits, the
router's own errors and refusals) never open that stream (envoy.yaml skips it), and a decision stream whose Envoy
filter sends no response body (protocol_config) ends right after the request body's reply.
An unexpected error becomes an opaque 500 (in the client's API's error shape) for that request only; a
cancelled stream (the client went away) just ends. Nothing outlives the stream except background cache writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import structlog
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2 as pm
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from semrouter import headers as H
from semrouter.response.apis import error_body
from semrouter.runtime import Runtime, RuntimeHolder
from semrouter.server import mutations as mut
from semrouter.server.request_phase import on_request_body, on_request_headers, on_request_trailers
from semrouter.server.response_phase import on_response_body, on_response_headers
from semrouter.server.state import StreamState
from semrouter.server.uploads import client_address
from semrouter.telemetry.logging import loggable

log = structlog.get_logger("semrouter.stream")


def _answer_complete(st: StreamState, req: pb.ProcessingRequest, phase: str | None) -> bool:
    if st.response.finished:  # e.g. all content-length bytes are in: no need to wait for the end-of-stream message
        return True
    if phase == "response_body":
        return req.response_body.end_of_stream
    return phase == "response_headers" and req.response_headers.end_of_stream


def _answer_elsewhere(req: pb.ProcessingRequest) -> bool:
    """Whether a decision stream will carry no answer: Envoy says (in the first message's protocol_config) that
    it sends no response body on it, as with the shipped configs, whose observer filter streams the answer.
    An Envoy that does not send protocol_config keeps the stream open to the end, as before."""
    return (not req.observability_mode and req.HasField("protocol_config")
            and req.protocol_config.response_body_mode == pm.ProcessingMode.NONE)


def _body_streamed(req: pb.ProcessingRequest) -> bool:
    """Whether Envoy says (protocol_config, first message) that it streams the request body in several messages.
    Otherwise (BUFFERED, BUFFERED_PARTIAL, or an Envoy that does not say) the first body message is the only one
    the request waits for."""
    return req.HasField("protocol_config") and req.protocol_config.request_body_mode in (
        pm.ProcessingMode.STREAMED, pm.ProcessingMode.FULL_DUPLEX_STREAMED)


class ExternalProcessor(pb_grpc.ExternalProcessorServicer):
    """Envoy's ext_proc service: one `Process` stream per HTTP request (decision stream) or per answer (observer
    stream), each run on the runtime (config, models, cache) current when it opened."""

    def __init__(self, holder: RuntimeHolder) -> None:
        self._holder = holder

    async def Process(  # noqa: N802  (gRPC method name)
        self, request_iterator: AsyncIterator[pb.ProcessingRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ProcessingResponse]:
        """Read Envoy's ProcessingRequests in phase order and yield one ProcessingResponse per phase (none on an
        observer stream), ending after an immediate response, or after the body reply when Envoy's protocol_config
        says no answer comes on this stream. An error in a request phase of an API request becomes an immediate 500
        `router_error` in that API's shape, in any other phase a plain CONTINUE; a cancelled stream (client gone)
        just ends."""
        rt = self._holder.acquire()  # the whole stream runs on the config it started with
        st = StreamState()
        rt.shared.metrics.stream_opened()
        answer_elsewhere: bool | None = None
        try:
            async for req in request_iterator:
                phase = req.WhichOneof("request")
                if answer_elsewhere is None:
                    answer_elsewhere = _answer_elsewhere(req)
                    st.body_streamed = _body_streamed(req)
                try:
                    resp = await self._handle(rt, st, phase, req)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("phase_failed", phase=phase, request_id=st.request_id, path=loggable(st.path))
                    resp = self._on_error(st, phase)
                if st.observer:  # Envoy ignores replies on an observer stream; end it once the answer is in
                    if _answer_complete(st, req, phase):
                        return
                    continue
                if resp is None:
                    continue
                yield resp
                if resp.HasField("immediate_response"):
                    return
                if answer_elsewhere and st.decided:
                    # Nothing else will come on this stream: end it now (Envoy then ignores the stream for the rest
                    # of the request) rather than hold it open until the answer is through and be told then.
                    return
        except asyncio.CancelledError:
            if not st.observer:  # Envoy may close an observer stream abruptly once it has seen the answer
                log.info("stream_cancelled", request_id=st.request_id, path=loggable(st.path))
                rt.shared.metrics.record_error(None, "cancellation")
            raise
        finally:
            self._upload_arrived(rt, st)
            rt.shared.metrics.stream_closed()
            self._holder.release(rt)

    async def _handle(self, rt: Runtime, st: StreamState, phase: str | None, req: pb.ProcessingRequest
                      ) -> pb.ProcessingResponse | None:
        if req.observability_mode:  # the observer filter's stream: Envoy does not wait for (or read) replies
            st.observer = True
            if phase == "request_headers":
                h = mut.header_map(req.request_headers.headers)
                st.request_id, st.join = loggable(h.get(H.REQUEST_ID)), h.get(H.JOIN, "")
                return None
        if phase == "request_headers":
            resp = on_request_headers(rt, st, req.request_headers)
            if st.kind in ("chat", "path") and not resp.HasField("immediate_response"):
                return self._hold_upload(rt, st, req) or resp
            return resp
        self._upload_arrived(rt, st)  # the body (or trailers without one) is in: Envoy holds it no longer
        if phase == "request_body":
            if st.kind not in ("chat", "path"):
                return mut.continue_plain(phase)
            st.body_parts.append(req.request_body.body)
            st.body_size += len(req.request_body.body)
            # A buffered body mode (the shipped configs) sends the body in one message, and Envoy forwards the
            # request once that message is answered, whatever its end_of_stream says (false when trailers follow,
            # as HTTP/2 allows): waiting for more would let the request go on undecided, past every policy. Only a
            # streamed body mode sends more messages.
            more = st.body_streamed and not req.request_body.end_of_stream
            if more and st.body_size <= rt.config.server.max_body_bytes:
                return mut.continue_plain(phase)
            st.decided = True
            return await on_request_body(rt, st)
        if phase == "response_headers":
            if st.observer:
                if not st.join:  # observer without a request phase: Envoy copies both onto the answer
                    h = mut.header_map(req.response_headers.headers)
                    st.request_id, st.join = loggable(h.get(H.REQUEST_ID)), h.get(H.JOIN, "")
                rt = self._adopt(st)
            else:
                rt.shared.inflight.take(st.join)  # answered on its own stream (single-filter config)
            st.runtime = rt
            return on_response_headers(rt, st, req.response_headers)
        if phase == "response_body":
            return on_response_body(st.runtime or rt, st, req.response_body)
        if phase == "request_trailers" and not st.observer:
            return on_request_trailers(st)
        if phase in ("request_trailers", "response_trailers"):
            return mut.continue_plain(phase)
        log.warning("unknown_phase", phase=phase)
        return None

    @staticmethod
    def _hold_upload(rt: Runtime, st: StreamState, req: pb.ProcessingRequest) -> pb.ProcessingResponse | None:
        """Take an upload slot of the client's address for a request whose body is still to come (server/uploads.py)
        and None; or, when that address holds `server.max_uploads_per_client` already, the immediate 429
        `too_many_uploads` (retry-after: 1) in the client's API's shape. No address from Envoy: no bound."""
        client = client_address(req.attributes)
        if client is None:
            return None
        if rt.shared.uploads.acquire(client, rt.config.server.max_uploads_per_client):
            st.upload_client = client if rt.config.server.max_uploads_per_client > 0 else None
            return None
        log.warning("too_many_uploads", request_id=st.request_id, held=rt.shared.uploads.held(client))
        rt.shared.metrics.record_error(None, "too_many_uploads")
        return mut.immediate(429, error_body(
            st.api, 429, "Too many requests from this client are still sending their body; retry shortly",
            "rate_limit_error", "too_many_uploads"), {"retry-after": "1"})

    @staticmethod
    def _upload_arrived(rt: Runtime, st: StreamState) -> None:
        """Give back the stream's upload slot, once (its body arrived, or the stream ended without one)."""
        if st.upload_client is not None:
            rt.shared.uploads.release(st.upload_client)
            st.upload_client = None

    def _adopt(self, st: StreamState) -> Runtime:
        """Join an observer stream to the request it answers: by the router-minted nonce (from its request headers,
        or from the answer's headers when the observer filter skips the request phase, as the shipped envoy.yaml
        does), and only when the answer carries the x-request-id that request had."""
        found = self._holder.current.shared.inflight.take(st.join, st.request_id)
        log.debug("observer_stream", request_id=st.request_id, matched=found is not None)
        if found is None:  # not forwarded by us (local reply, pass-through path) or long gone
            return self._holder.current
        st.routed, st.started_at, st.result_headers = found.routed, found.started_at, {}
        return found.runtime

    @staticmethod
    def _on_error(st: StreamState, phase: str | None) -> pb.ProcessingResponse:
        if phase in ("request_headers", "request_body") and st.kind == "chat":
            return mut.immediate(500, error_body(st.api, 500, "The router failed to process this request",
                                                 "server_error", "router_error"))
        return mut.continue_plain(phase or "request_headers")
