"""The Process state machine, driven in-process with ext_proc messages (no Envoy)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb

from semrouter.config import parse_config
from semrouter.runtime import RuntimeHolder, Shared, build_runtime
from semrouter.server.mutations import header_map
from semrouter.server.stream import ExternalProcessor

CFG = {
    "routing": {"default_model": "small"},
    "models": [{"name": "small", "endpoints": [{"address": "10.0.0.1", "port": 8001}]},
               {"name": "big", "endpoints": [{"address": "10.0.0.2", "port": 8002, "weight": 3},
                                             {"address": "10.0.0.3", "port": 8002, "weight": 1}]}],
    "categories": [{"name": "math", "model_scores": [{"model": "big", "score": 0.9}]}],
    "keyword_rules": [{"name": "calc", "category": "math", "keywords": ["integral"]}],
    "signals": {"enabled": False},
    "cache": {"enabled": False},
}


def headers_msg(method: str, path: str, eos: bool = False, **extra: str) -> pb.ProcessingRequest:
    hs = {":method": method, ":path": path, "content-type": "application/json", "x-request-id": "rid-1", **extra}
    hm = base_pb2.HeaderMap(headers=[base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in hs.items()])
    return pb.ProcessingRequest(request_headers=pb.HttpHeaders(headers=hm, end_of_stream=eos))


def body_msg(body: bytes) -> pb.ProcessingRequest:
    return pb.ProcessingRequest(request_body=pb.HttpBody(body=body, end_of_stream=True))


def resp_headers_msg(status: int) -> pb.ProcessingRequest:
    hm = base_pb2.HeaderMap(headers=[base_pb2.HeaderValue(key=":status", raw_value=str(status).encode())])
    return pb.ProcessingRequest(response_headers=pb.HttpHeaders(headers=hm))


async def run(msgs: list[pb.ProcessingRequest], cfg: dict[str, Any] = CFG) -> list[pb.ProcessingResponse]:
    rt = await build_runtime(parse_config(cfg), Shared())
    proc = ExternalProcessor(RuntimeHolder(rt))

    async def it() -> AsyncIterator[pb.ProcessingRequest]:
        for m in msgs:
            yield m

    return [r async for r in proc.Process(it(), None)]


def set_headers(mutation: pb.HeaderMutation) -> dict[str, str]:
    return {o.header.key: o.header.raw_value.decode() for o in mutation.set_headers}


async def route_chat(proc: ExternalProcessor, content: str) -> list[pb.ProcessingResponse]:
    """One `auto` chat request (headers + body) through a decision stream; the replies."""
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": content}]}).encode()

    async def it() -> AsyncIterator[pb.ProcessingRequest]:
        for m in (headers_msg("POST", "/v1/chat/completions"), body_msg(body)):
            yield m

    return [r async for r in proc.Process(it(), None)]


async def test_full_chat_stream_sets_route_and_result_headers() -> None:
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "an integral please"}]}).encode()
    out = await run([headers_msg("POST", "/v1/chat/completions"), body_msg(body), resp_headers_msg(200)])
    assert [r.WhichOneof("response") for r in out] == ["request_headers", "request_body", "response_headers"]
    # client-supplied routing headers are stripped at the header phase
    assert "x-semrouter-cluster" in out[0].request_headers.response.header_mutation.remove_headers
    common = out[1].request_body.response
    assert common.clear_route_cache is True
    new_body = common.body_mutation.body
    assert json.loads(new_body)["model"] == "big"
    hs = set_headers(common.header_mutation)
    assert hs["content-length"] == str(len(new_body))
    assert hs["x-semrouter-cluster"] == "big"
    assert hs["x-vsr-destination-endpoint"] in ("10.0.0.2:8002", "10.0.0.3:8002")
    res = set_headers(out[2].response_headers.response.header_mutation)
    assert res["x-vsr-selected-model"] == "big" and res["x-vsr-selected-category"] == "math"


async def test_models_path_is_immediate() -> None:
    out = await run([headers_msg("GET", "/v1/models", eos=True)])
    assert len(out) == 1 and out[0].HasField("immediate_response")
    assert [m["id"] for m in json.loads(out[0].immediate_response.body)["data"]] == ["auto", "MoM", "small", "big"]


async def test_unowned_path_is_404_never_the_default_model() -> None:
    out = await run([headers_msg("POST", "/not-v1/thing")])  # a path_models path skips bodies: test_stream_apis
    assert out[0].immediate_response.status.code == 404
    assert json.loads(out[0].immediate_response.body)["error"]["code"] == "unknown_url"


async def test_bad_body_ends_stream_with_error() -> None:
    out = await run([headers_msg("POST", "/v1/chat/completions"), body_msg(b"{oops"),
                     resp_headers_msg(200)])  # nothing after an immediate response is processed
    assert len(out) == 2
    imm = out[1].immediate_response
    assert imm.status.code == 400
    assert json.loads(imm.body)["error"]["code"] == "invalid_json"
    assert header_map(base_pb2.HeaderMap(headers=[o.header for o in imm.headers.set_headers]))["content-type"] \
        == "application/json"


async def test_state_does_not_leak_between_streams() -> None:
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "integral"}]}).encode()
    first = await run([headers_msg("POST", "/v1/chat/completions"), body_msg(body), resp_headers_msg(200)])
    other = {**CFG, "routing": {**CFG["routing"], "path_models": {"/other": "small"}}}  # a path it routes, undecided
    second = await run([headers_msg("GET", "/other", eos=True), resp_headers_msg(200)], other)
    assert set_headers(first[2].response_headers.response.header_mutation)["x-vsr-selected-model"] == "big"
    assert set_headers(second[1].response_headers.response.header_mutation) == {}


async def test_internal_error_becomes_opaque_500(monkeypatch: pytest.MonkeyPatch) -> None:
    import semrouter.server.stream as stream

    async def boom(rt, st):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(stream, "on_request_body", boom)
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "x"}]}).encode()
    out = await run([headers_msg("POST", "/v1/chat/completions"), body_msg(body)])
    imm = out[1].immediate_response
    assert imm.status.code == 500
    assert b"secret" not in imm.body and json.loads(imm.body)["error"]["code"] == "router_error"


async def test_stages_are_traced_when_tracing_is_on() -> None:
    import contextlib

    from semrouter.telemetry.tracing import Tracer

    names: list[str] = []

    class FakeSpan:
        def __init__(self) -> None:
            self.attrs: dict = {}

        def set_attribute(self, k, v) -> None:
            self.attrs[k] = v

    class FakeOtel:
        @contextlib.contextmanager
        def start_as_current_span(self, name):
            names.append(name)
            yield FakeSpan()

    rt = await build_runtime(parse_config(CFG), Shared(tracer=Tracer(True, FakeOtel())))
    proc = ExternalProcessor(RuntimeHolder(rt))
    await route_chat(proc, "integral")
    assert names == ["semrouter.parse", "semrouter.signals", "semrouter.decide"]


@pytest.mark.parametrize("request_phase", [False, True], ids=["answer-only (shipped)", "with request headers"])
async def test_observer_stream_joins_its_request_and_replies_nothing(request_phase: bool) -> None:
    """Shipped Envoy configs: a second ext_proc filter in observability mode streams the answer; it is joined
    by the x-request-id Envoy puts on the answer (or, with request headers SEND, on the request headers)."""
    rt = await build_runtime(parse_config(CFG), Shared())
    proc = ExternalProcessor(RuntimeHolder(rt))
    out = await route_chat(proc, "an integral")
    sent = set_headers(out[1].request_body.response.header_mutation)
    assert sent["x-vsr-selected-model"] == "big"  # Envoy copies these to the answer
    assert len(rt.shared.inflight) == 1

    answer = json.dumps({"id": "x", "object": "chat.completion", "model": "big", "choices": [],
                         "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}).encode()

    async def observer_stream():
        if request_phase:
            m = headers_msg("POST", "/v1/chat/completions")
            m.request_headers.headers.headers.append(
                base_pb2.HeaderValue(key="x-semrouter-join", raw_value=sent["x-semrouter-join"].encode()))
            m.observability_mode = True
            yield m
        r = resp_headers_msg(200)
        if not request_phase:  # the answer carries the request's join nonce and id (vhost response_headers_to_add)
            for k, v in (("x-semrouter-join", sent["x-semrouter-join"]), ("x-request-id", "rid-1")):
                r.response_headers.headers.headers.append(base_pb2.HeaderValue(key=k, raw_value=v.encode()))
        r.observability_mode = True
        yield r
        yield pb.ProcessingRequest(observability_mode=True,
                                   response_body=pb.HttpBody(body=answer, end_of_stream=True))

    replies = [r async for r in proc.Process(observer_stream(), None)]
    assert replies == []
    assert len(rt.shared.inflight) == 0
    m = rt.shared.metrics
    assert m.value("llm_model_completion_tokens_total", {"model": "big"}) == 7
    assert rt.shared.health.snapshot()  # the endpoint's answer was recorded


@pytest.mark.parametrize("sent", ["all", "short"])
async def test_observer_ends_once_content_length_bytes_are_in(sent: str) -> None:
    """Envoy streams a JSON answer as its bytes, then an empty end-of-stream message. With content-length on
    the answer the observer finishes (metrics, cache) at the last byte and ends the stream without waiting for
    that message; an answer cut short of its content-length is never treated as complete."""
    rt = await build_runtime(parse_config(CFG), Shared())
    proc = ExternalProcessor(RuntimeHolder(rt))
    out = await route_chat(proc, "an integral")
    join = set_headers(out[1].request_body.response.header_mutation)["x-semrouter-join"].encode()
    answer = json.dumps({"id": "x", "object": "chat.completion", "model": "big", "choices": [],
                         "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}).encode()
    consumed = []

    async def observer_stream():
        r = resp_headers_msg(200)
        for k, v in (("x-semrouter-join", join), ("x-request-id", b"rid-1"),
                     ("content-length", str(len(answer)).encode())):
            r.response_headers.headers.headers.append(base_pb2.HeaderValue(key=k, raw_value=v))
        r.observability_mode = True
        for m in (r,
                  pb.ProcessingRequest(observability_mode=True, response_body=pb.HttpBody(body=answer[:10])),
                  pb.ProcessingRequest(observability_mode=True,
                                       response_body=pb.HttpBody(body=answer[10:] if sent == "all" else b"")),
                  pb.ProcessingRequest(observability_mode=True, response_body=pb.HttpBody(end_of_stream=False))):
            consumed.append(m)
            yield m

    replies = [r async for r in proc.Process(observer_stream(), None)]
    assert replies == []
    tokens = rt.shared.metrics.value("llm_model_completion_tokens_total", {"model": "big"})
    if sent == "all":
        assert len(consumed) == 3  # ended at the last byte; the trailing message was never read
        assert tokens == 7
    else:
        assert len(consumed) == 4  # still waiting for the rest (the iterator ran out: the stream ended)
        assert not tokens  # never finished: no usage recorded, nothing stored


def test_inflight_table_is_bounded_and_ages_out() -> None:
    from semrouter.server.inflight import InflightTable

    now = [0.0]
    t = InflightTable(max_entries=2, max_age_s=10, clock=lambda: now[0])
    for rid in ("a", "b", "c"):
        t.put(rid, None, None, 0.0)  # type: ignore[arg-type]
    assert len(t) == 2 and t.take("a") is None
    now[0] = 11.0
    assert t.take("b") is None  # too old
    t.put("", None, None, 0.0)  # type: ignore[arg-type]  (no join key: nothing to join later)
    assert t.take("") is None


def test_inflight_join_needs_the_nonce_and_the_request_id_it_was_made_for() -> None:
    """Issue 12: the join key is router-minted and single-use; a key is never overwritten by a later put, and an
    answer whose x-request-id is not its request's is not joined."""
    from semrouter.server.inflight import InflightTable, new_join_key

    t = InflightTable()
    keys = {new_join_key() for _ in range(1000)}
    assert len(keys) == 1000 and all(len(k) >= 22 for k in keys)
    k = new_join_key()
    t.put(k, "rt-a", None, 0.0, request_id="same")  # type: ignore[arg-type]
    t.put(k, "rt-b", None, 0.0, request_id="same")  # type: ignore[arg-type]
    assert t.take("same") is None  # the client-visible id is not a key
    found = t.take(k, "same")
    assert found is not None and found.runtime == "rt-a"
    assert t.take(k, "same") is None  # once
    t.put(k, "rt-a", None, 0.0, request_id="victim")  # type: ignore[arg-type]
    assert t.take(k, "attacker") is None and len(t) == 0


@pytest.mark.parametrize("response_body_mode", ["NONE", "STREAMED", None])
async def test_decision_stream_ends_after_its_body_reply_when_no_answer_comes_on_it(
        response_body_mode: str | None) -> None:
    """Envoy's first message says (protocol_config) whether the answer's body comes on this stream. With NONE (the
    shipped configs: the observer filter streams the answer) the router ends the stream after the request-body
    reply and reads nothing more; otherwise (a single-filter config, or an Envoy that does not say) it stays open
    for the response phases."""
    from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2 as pm

    rt = await build_runtime(parse_config(CFG), Shared())
    proc = ExternalProcessor(RuntimeHolder(rt))
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "an integral"}]}).encode()
    first = headers_msg("POST", "/v1/chat/completions")
    if response_body_mode is not None:
        first.protocol_config.response_body_mode = getattr(pm.ProcessingMode, response_body_mode)
    read = []

    async def it() -> AsyncIterator[pb.ProcessingRequest]:
        for m in (first, body_msg(body), resp_headers_msg(200)):
            read.append(m.WhichOneof("request"))
            yield m

    out = [r async for r in proc.Process(it(), None)]
    if response_body_mode == "NONE":
        assert read == ["request_headers", "request_body"] and len(out) == 2
    else:
        assert read == ["request_headers", "request_body", "response_headers"] and len(out) == 3
    assert out[1].request_body.response.clear_route_cache


@pytest.mark.parametrize("body_mode, decided", [(None, True), ("BUFFERED", True), ("BUFFERED_PARTIAL", True),
                                                ("STREAMED", False)])
async def test_a_buffered_body_is_decided_even_when_trailers_follow(body_mode: str | None, decided: bool) -> None:
    """With trailers after the body (HTTP/2) Envoy's one buffered body message has end_of_stream false, and it
    forwards the request once that message is answered: the router decides on it (it used to wait, and the
    request went on undecided). Only a streamed body mode sends more messages."""
    from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2 as pm

    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "an integral"}]}).encode()
    first = headers_msg("POST", "/v1/chat/completions")
    if body_mode is not None:
        first.protocol_config.request_body_mode = getattr(pm.ProcessingMode, body_mode)
    out = await run([first, pb.ProcessingRequest(request_body=pb.HttpBody(body=body, end_of_stream=False))])
    assert len(out) == 2
    assert out[1].request_body.response.clear_route_cache is decided
    if decided:
        assert set_headers(out[1].request_body.response.header_mutation)["x-semrouter-cluster"] == "big"


async def test_trailers_without_a_body_are_missing_body() -> None:
    """Headers then trailers (HTTP/2) and no body: Envoy sends no body message, only the trailers (shipped
    configs: request_trailer_mode SEND); the router answers 400 missing_body rather than CONTINUE undecided."""
    trailers = pb.ProcessingRequest(request_trailers=pb.HttpTrailers())
    out = await run([headers_msg("POST", "/v1/chat/completions"), trailers])
    assert out[1].immediate_response.status.code == 400
    assert json.loads(out[1].immediate_response.body)["error"]["code"] == "missing_body"
