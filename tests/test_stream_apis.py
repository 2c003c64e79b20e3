"""Responses / Messages / undecided paths through the Process state machine, in-process (no Envoy)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from test_stream import CFG, body_msg, headers_msg, set_headers

from semrouter.config import parse_config
from semrouter.runtime import RuntimeHolder, Shared, build_runtime
from semrouter.server.stream import ExternalProcessor


async def run(msgs: list[pb.ProcessingRequest], shared: Shared | None = None, **routing: object
              ) -> list[pb.ProcessingResponse]:
    cfg = dict(CFG, routing={**CFG["routing"], **routing})  # type: ignore[dict-item]
    proc = ExternalProcessor(RuntimeHolder(await build_runtime(parse_config(cfg), shared or Shared())))

    async def it() -> AsyncIterator[pb.ProcessingRequest]:
        for m in msgs:
            yield m

    return [r async for r in proc.Process(it(), None)]


async def test_responses_body_is_routed_and_rewritten_in_its_own_shape() -> None:
    body = json.dumps({"model": "auto", "input": [{"role": "user", "content": "an integral please"}],
                       "instructions": "short"}).encode()
    out = await run([headers_msg("POST", "/v1/responses"), body_msg(body)])
    common = out[1].request_body.response
    sent = json.loads(common.body_mutation.body)
    assert sent["model"] == "big" and sent["input"][0]["content"] == "an integral please" and "messages" not in sent
    assert set_headers(common.header_mutation)["x-semrouter-cluster"] == "big"


async def test_messages_errors_are_anthropic_shaped() -> None:
    out = await run([headers_msg("POST", "/v1/messages"), body_msg(b'{"model": "auto", "messages": []}')])
    imm = out[1].immediate_response
    assert imm.status.code == 400
    err = json.loads(imm.body)
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    empty = await run([headers_msg("POST", "/v1/messages", eos=True)])
    assert json.loads(empty[0].immediate_response.body)["error"]["type"] == "invalid_request_error"
    wrong_type = await run([headers_msg("POST", "/v1/messages", **{"content-type": "text/plain"})])
    assert wrong_type[0].immediate_response.status.code == 415
    assert json.loads(wrong_type[0].immediate_response.body)["type"] == "error"


async def test_model_retrieve_answers_known_ids_and_404s_others() -> None:
    ok = await run([headers_msg("GET", "/v1/models/MoM", eos=True)])
    assert json.loads(ok[0].immediate_response.body) == {"id": "MoM", "object": "model", "created": 0,
                                                          "owned_by": "semrouter"}
    spelled = await run([headers_msg("GET", "/V1/Models/MoM/", eos=True)])  # path folded, the id's case kept
    assert json.loads(spelled[0].immediate_response.body)["id"] == "MoM"
    assert (await run([headers_msg("GET", "/v1/models/mom", eos=True)]))[0].immediate_response.status.code == 404
    missing = await run([headers_msg("GET", "/v1/models/gpt-4o%2Fx", eos=True)])
    assert missing[0].immediate_response.status.code == 404
    assert json.loads(missing[0].immediate_response.body)["error"]["code"] == "model_not_found"
    claude = await run([headers_msg("GET", "/v1/models", eos=True, **{"anthropic-version": "2023-06-01"})])
    page = json.loads(claude[0].immediate_response.body)
    assert [m["id"] for m in page["data"]] == ["auto", "MoM", "small", "big"] and page["has_more"] is False
    assert page["data"][0]["type"] == "model"
    gone = await run([headers_msg("GET", "/v1/models/nope", eos=True, **{"anthropic-version": "2023-06-01"})])
    assert json.loads(gone[0].immediate_response.body)["error"]["type"] == "not_found_error"


async def test_undecided_v1_paths_need_a_configured_model() -> None:
    for path in ("/v1/embeddings", "/v1/completions", "/v1/audio/transcriptions", "/v1/images/generations",
                 "/V1/Embeddings/"):
        out = await run([headers_msg("POST", path)])
        assert out[0].immediate_response.status.code == 404, path
        assert json.loads(out[0].immediate_response.body)["error"]["code"] == "unknown_url"
    cfg = {"path_models": {"/v1/audio/": "big", "/v1/embeddings": "small"}}
    routed = await run([headers_msg("POST", "/v1/audio/transcriptions", **{"x-semrouter-cluster": "evil",
                                                                           "content-type": "multipart/form-data"})],
                       **cfg)
    hr = routed[0].request_headers.response
    hs = set_headers(hr.header_mutation)
    assert hs["x-semrouter-cluster"] == "big" and hs["x-selected-model"] == "big" and hr.clear_route_cache
    assert "x-semrouter-cluster" in hr.header_mutation.remove_headers  # the client's copy never counts
    assert routed[0].mode_override.request_body_mode == 0  # NONE: a non-JSON body passes untouched
    body = json.dumps({"model": "text-embedding-3-small", "input": ["a"]}).encode()
    emb = await run([headers_msg("POST", "/V1/Embeddings"), body_msg(body)], **cfg)  # any spelling of the path
    assert set_headers(emb[0].request_headers.response.header_mutation)["x-semrouter-cluster"] == "small"
    common = emb[1].request_body.response
    assert json.loads(common.body_mutation.body) == {"model": "small", "input": ["a"]}  # the served model's name
    assert set_headers(common.header_mutation)["content-length"] == str(len(common.body_mutation.body))
    bad = await run([headers_msg("POST", "/v1/embeddings"), body_msg(b"{nope")], **cfg)
    assert bad[1].immediate_response.status.code == 400
    assert json.loads(bad[1].immediate_response.body)["error"]["code"] == "invalid_json"
    health = await run([headers_msg("GET", "/health", eos=True)], **{"path_models": {**cfg["path_models"],
                                                                                 "/health": "small"}})
    assert set_headers(health[0].request_headers.response.header_mutation)["x-semrouter-cluster"] == "small"
    assert (await run([headers_msg("GET", "/health", eos=True)], **cfg))[0].immediate_response.status.code == 404
    gz = await run([headers_msg("POST", "/v1/embeddings", **{"content-encoding": "gzip"}), body_msg(body)], **cfg)
    assert gz[0].immediate_response.status.code == 415  # its model cannot be set: refused before any routing
    assert json.loads(gz[0].immediate_response.body)["error"]["code"] == "unsupported_content_encoding"


async def test_responses_follow_up_goes_where_its_conversation_is_stored() -> None:
    shared = Shared()
    shared.response_owners.put("anonymous", "resp_1", "small", "10.0.0.1:8001")  # these requests send no credential
    shared.response_owners.put("anonymous", "resp_2", "big", "10.0.0.3:8002")

    async def send(body: dict[str, object]) -> dict[str, str]:
        out = await run([headers_msg("POST", "/v1/responses"), body_msg(json.dumps(body).encode())], shared)
        return set_headers(out[1].request_body.response.header_mutation)

    math = {"model": "auto", "input": "an integral please"}
    assert (await send(math))["x-semrouter-cluster"] == "big"  # what this turn's signals choose
    follow = await send({**math, "previous_response_id": "resp_1"})
    assert follow["x-semrouter-cluster"] == "small" and follow["x-semrouter-reason"] == "previous_response"
    assert follow["x-vsr-destination-endpoint"] == "10.0.0.1:8001"
    same = await send({**math, "previous_response_id": "resp_2"})  # same model: its stored endpoint (of two)
    assert same["x-semrouter-cluster"] == "big" and same["x-vsr-destination-endpoint"] == "10.0.0.3:8002"
    unknown = await send({**math, "previous_response_id": "resp_unknown"})
    assert unknown["x-semrouter-cluster"] == "big" and unknown["x-semrouter-reason"] != "previous_response"
    explicit = await send({"model": "big", "input": "hi", "previous_response_id": "resp_1"})
    assert explicit["x-semrouter-cluster"] == "big"  # a model the client names is kept
    got = await run([headers_msg("GET", "/v1/responses/resp_1", eos=True)], shared)  # retrieve a stored response
    hs = set_headers(got[0].request_headers.response.header_mutation)
    assert hs["x-semrouter-cluster"] == "small" and hs["x-vsr-destination-endpoint"] == "10.0.0.1:8001"
    cancel = await run([headers_msg("POST", "/v1/responses/resp_1/cancel")], shared)  # its body is not touched
    assert cancel[0].mode_override.request_body_mode == 0
    lost = await run([headers_msg("DELETE", "/v1/responses/resp_nope", eos=True)], shared)
    assert lost[0].immediate_response.status.code == 404


def test_response_owners_are_bounded_in_size_and_age() -> None:
    from semrouter.server.conversations import ResponseOwners

    now = [0.0]
    owners = ResponseOwners(max_entries=2, max_age_s=10, clock=lambda: now[0])
    owners.put("t", "a", "m", "h:1")
    owners.put("t", "b", "m", "h:1")
    assert owners.get("t", "a") is not None  # refreshed: "b" is now the least recently used
    owners.put("t", "c", "m", "h:1")
    assert owners.get("t", "b") is None and owners.get("t", "a") is not None and len(owners) == 2
    now[0] = 11
    assert owners.get("t", "c") is None


async def test_a_responses_id_is_followed_only_for_the_tenant_it_was_produced_for() -> None:
    """trust18: another tenant's response id behaves like an unknown id (follow-up, retrieve, delete); a request
    without a tenant is neither remembered nor followed."""
    from semrouter.cache.keys import tenant_of
    from semrouter.server.conversations import ResponseOwners

    alice, mallory = {"authorization": "Bearer sk-alice"}, {"authorization": "Bearer sk-mallory"}
    label = tenant_of(parse_config(CFG).cache, alice)
    assert label is not None and label.startswith("c:")
    shared = Shared()
    shared.response_owners.put(label, "resp_a", "small", "10.0.0.1:8001")

    async def send(body: dict[str, object], hs: dict[str, str]) -> dict[str, str]:
        out = await run([headers_msg("POST", "/v1/responses", **hs), body_msg(json.dumps(body).encode())], shared)
        return set_headers(out[1].request_body.response.header_mutation)

    follow = {"model": "auto", "input": "an integral please", "previous_response_id": "resp_a"}
    own = await send(follow, alice)
    assert own["x-semrouter-reason"] == "previous_response" and own["x-vsr-destination-endpoint"] == "10.0.0.1:8001"
    for hs in (mallory, {}):  # another credential, and none (the anonymous tenant)
        other = await send(follow, hs)
        assert other["x-semrouter-cluster"] == "big" and other["x-semrouter-reason"] != "previous_response"
        assert other.get("x-vsr-destination-endpoint") != "10.0.0.1:8001"
        for method, path in (("GET", "/v1/responses/resp_a"), ("DELETE", "/v1/responses/resp_a")):
            got = await run([headers_msg(method, path, eos=True, **hs)], shared)
            assert got[0].immediate_response.status.code == 404  # as for an id the router never saw
    got = await run([headers_msg("GET", "/v1/responses/resp_a", eos=True, **alice)], shared)
    assert set_headers(got[0].request_headers.response.header_mutation)["x-vsr-destination-endpoint"] == "10.0.0.1:8001"
    nobody = ResponseOwners()
    nobody.put(None, "resp_n", "small", "h:1")
    assert len(nobody) == 0 and nobody.get(None, "resp_n") is None


async def test_other_methods_on_api_paths_are_405_in_the_api_shape() -> None:
    out = await run([headers_msg("GET", "/V1/Messages/", eos=True)])
    imm = out[0].immediate_response
    assert imm.status.code == 405 and json.loads(imm.body)["type"] == "error"
    assert set_headers(imm.headers)["allow"] == "POST"
    resp = await run([headers_msg("PUT", "/v1/responses", eos=True)])
    assert json.loads(resp[0].immediate_response.body)["error"]["code"] == "method_not_allowed"


async def test_api_path_variants_are_forwarded_in_their_one_spelling() -> None:
    body = json.dumps({"model": "auto", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]}).encode()
    out = await run([headers_msg("POST", "/V1/Messages/?beta=true"), body_msg(body)])
    assert set_headers(out[0].request_headers.response.header_mutation)[":path"] == "/v1/messages?beta=true"
