"""Building ext_proc responses: header/body mutations, route-cache clearing, immediate replies."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2 as pm
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.type.v3 import http_status_pb2

from semrouter import headers as H
from semrouter.config.schema import Model, Routing

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def header_map(headers: base_pb2.HeaderMap) -> dict[str, str]:
    """Envoy's header list → a dict with lower-case names (values from raw_value when set)."""
    out: dict[str, str] = {}
    for h in headers.headers:
        value = h.raw_value.decode("utf-8", "replace") if h.raw_value else h.value
        key = h.key.lower()
        out[key] = f"{out[key]},{value}" if key in out else value
    return out


def header_mutation(set_headers: Mapping[str, str] | None = None,
                    remove: Iterable[str] = ()) -> pb.HeaderMutation:
    """Set each of `set_headers` (name → value, overwriting) and remove each name in `remove`."""
    return pb.HeaderMutation(
        set_headers=[
            base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=k, raw_value=v.encode()), append_action=_OVERWRITE)
            for k, v in (set_headers or {}).items()
        ],
        remove_headers=list(remove),
    )


def route_headers(routing: Routing, model: Model, hostport: Callable[[], str]) -> dict[str, str]:
    """The request headers Envoy routes on for `model` (names in semrouter/headers.py): the model's name, its
    cluster when `routing.endpoint_selection` is "cluster_header" or "both", and the endpoint `hostport()`
    ("host:port", called only when it is "original_dst" or "both", so no endpoint is picked for nothing)."""
    out = {H.SELECTED_MODEL_REQ: model.name}
    if routing.endpoint_selection in ("cluster_header", "both"):
        out[H.CLUSTER] = model.cluster_name
    if routing.endpoint_selection in ("original_dst", "both"):
        out[H.DESTINATION_ENDPOINT] = hostport()
    return out


def continue_request_headers(set_headers: Mapping[str, str] | None = None, remove: Iterable[str] = (),
                             mode: pm.ProcessingMode | None = None,
                             clear_route_cache: bool = False) -> pb.ProcessingResponse:
    """CONTINUE for the request_headers phase: the header mutation, optionally a processing-mode override (`mode`,
    e.g. skip_bodies_mode) and clear_route_cache (Envoy picks the route again on the new headers)."""
    resp = pb.ProcessingResponse(
        request_headers=pb.HeadersResponse(response=pb.CommonResponse(
            header_mutation=header_mutation(set_headers, remove), clear_route_cache=clear_route_cache))
    )
    if mode is not None:
        resp.mode_override.CopyFrom(mode)
    return resp


def continue_request_body(body: bytes | None, set_headers: Mapping[str, str], remove: Iterable[str] = (),
                          clear_route_cache: bool = True) -> pb.ProcessingResponse:
    """CONTINUE for the request_body phase: replace the body with `body` (None: unchanged), set/remove headers, and
    by default clear the route cache so Envoy routes on the headers just set."""
    common = pb.CommonResponse(
        status=pb.CommonResponse.CONTINUE,
        header_mutation=header_mutation(set_headers, remove),
        clear_route_cache=clear_route_cache,
    )
    if body is not None:
        common.body_mutation.CopyFrom(pb.BodyMutation(body=body))
    return pb.ProcessingResponse(request_body=pb.BodyResponse(response=common))


def continue_response_headers(set_headers: Mapping[str, str] | None = None) -> pb.ProcessingResponse:
    """CONTINUE for the response_headers phase, adding `set_headers` to the answer."""
    return pb.ProcessingResponse(
        response_headers=pb.HeadersResponse(response=pb.CommonResponse(header_mutation=header_mutation(set_headers)))
    )


def continue_response_body() -> pb.ProcessingResponse:
    """An empty CONTINUE for the response_body phase."""
    return pb.ProcessingResponse(response_body=pb.BodyResponse(response=pb.CommonResponse()))


def continue_plain(phase: str) -> pb.ProcessingResponse:
    """An empty CONTINUE for whichever phase `phase` names (trailers included)."""
    if phase in ("request_trailers", "response_trailers"):
        return pb.ProcessingResponse(**{phase: pb.TrailersResponse()})
    if phase in ("request_body", "response_body"):
        return pb.ProcessingResponse(**{phase: pb.BodyResponse(response=pb.CommonResponse())})
    return pb.ProcessingResponse(**{phase: pb.HeadersResponse(response=pb.CommonResponse())})


def immediate(status: int, body: bytes, headers: Mapping[str, str] | None = None,
              content_type: str = "application/json", details: str = "semrouter") -> pb.ProcessingResponse:
    """An ImmediateResponse: Envoy answers the client with `status`, `body` and `headers` (content-type
    `content_type`) and ends the request. `details` is Envoy's response code details; the shipped configs'
    local_reply_config keeps replies whose details are "semrouter" as they are (tests/test_local_replies.py)."""
    hdrs = {"content-type": content_type, **(headers or {})}
    return pb.ProcessingResponse(
        immediate_response=pb.ImmediateResponse(
            status=http_status_pb2.HttpStatus(code=status),
            headers=header_mutation(hdrs),
            body=body,
            details=details,
        )
    )


def skip_bodies_mode() -> pm.ProcessingMode:
    """For paths the router does not own: no bodies, no response processing."""
    return pm.ProcessingMode(
        request_body_mode=pm.ProcessingMode.NONE,
        response_header_mode=pm.ProcessingMode.SKIP,
        response_body_mode=pm.ProcessingMode.NONE,
        request_trailer_mode=pm.ProcessingMode.SKIP,
        response_trailer_mode=pm.ProcessingMode.SKIP,
    )
