"""Header-phase answers for paths the router does not decide: the model list, one model, and the paths
(embeddings, completions, audio, images, ...) that `routing.path_models` sends to a named model.

    GET /v1/models        -> the auto names (auto, MoM) and every configured model, answered by the router
    GET /v1/models/{id}   -> that model object, or a 404 `model_not_found` in OpenAI's shape
                             (both in Anthropic's shapes when the request carries `anthropic-version`)
    /v1/responses/{id}... -> (retrieve, delete, input_items, cancel) the model and endpoint that produced that
                             response, when the router saw it (server/conversations.py)
    any other path        -> the model `routing.path_models` names for it (routed by the same headers as a
                             decision; a JSON body's `model` is set to that model, any other body, e.g.
                             multipart audio, passes untouched), else a 404 `unknown_url` (in /v1/ or not:
                             an upstream's own endpoints, such as vLLM's /metrics or /tokenize, stay private)
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from envoy.service.ext_proc.v3 import external_processor_pb2 as pb

from semrouter import headers as H
from semrouter.headers import ANTHROPIC_VERSION
from semrouter.cache.keys import tenant_of
from semrouter.config.schema import Config
from semrouter.request import body_json
from semrouter.request.errors import RequestError
from semrouter.request.parse import Api, check_content_encoding
from semrouter.request.validate import load_json_object
from semrouter.response import anthropic, openai
from semrouter.response.apis import error_body as api_error_body
from semrouter.runtime import Runtime
from semrouter.server import mutations as mut
from semrouter.server.conversations import Owner

MODELS_PATH = "/v1/models"


def model_names(cfg: Config) -> list[str]:
    """What /v1/models lists: every auto name, then every configured model, in config order."""
    return [*cfg.routing.auto_model_names, *(m.name for m in cfg.models)]


def models_reply(cfg: Config, path: str, headers: Mapping[str, str]) -> pb.ProcessingResponse:
    """The answer to GET /v1/models or GET /v1/models/{id} (`path` normalised but in its own letter case: the id
    is matched exactly and may contain '/'), in Anthropic's shapes for a client that sends `anthropic-version`
    (as its SDK does), else OpenAI's."""
    api: Api = "messages" if ANTHROPIC_VERSION in headers else "chat"
    names = model_names(cfg)
    if path.lower() == MODELS_PATH:
        if api == "messages":
            return mut.immediate(200, json.dumps(anthropic.models_list(names)).encode())
        return mut.immediate(200, openai.models_list(names))
    wanted = path[len(MODELS_PATH) + 1:]
    if wanted in names:
        obj = anthropic.model_object(wanted) if api == "messages" else openai.model_object(wanted)
        return mut.immediate(200, json.dumps(obj).encode())
    return mut.immediate(404, api_error_body(api, 404, f"The model '{wanted[:200]}' does not exist",
                                             "invalid_request_error", "model_not_found", "model"))


def model_for_path(cfg: Config, path: str) -> str | None:
    """The model `routing.path_models` names for `path` (exact key first, then the longest prefix key; letter
    case is not significant, as for every path the router matches)."""
    path = path.lower()
    table = {k.lower(): v for k, v in cfg.routing.path_models.items()}
    if path in table:
        return table[path]
    prefixes = [k for k in table if k.endswith("/") and path.startswith(k)]
    return table[max(prefixes, key=len)] if prefixes else None


def other_path_reply(rt: Runtime, method: str, path: str, headers: Mapping[str, str], remove: tuple[str, ...],
                     end_of_stream: bool) -> tuple[pb.ProcessingResponse, str | None]:
    """Route a path the router does not decide to its configured model, or answer 404 (never the default model).
    Returns the reply and, when the JSON body must follow (its `model` rewritten), the model's name."""
    cfg = rt.config
    owner = _stored_response_owner(rt, path, headers)
    if owner is not None:  # GET/DELETE /v1/responses/{id}[/...]: the server that stored it
        model, endpoint, reason = cfg.model(owner.model), owner.endpoint, "previous_response"
    else:
        name = model_for_path(cfg, path)
        model, endpoint, reason = (cfg.model(name) if name else None), None, "path"
    if model is None:  # in Anthropic's shape for its SDK (count_tokens, batches), as for /v1/models
        api: Api = "messages" if ANTHROPIC_VERSION in headers else "chat"
        response_id = _response_id(path)
        if response_id is not None:  # not "no model serves this path": the id is what is unknown
            return mut.immediate(404, api_error_body(
                api, 404, f"No response with id '{response_id[:200]}' is known to this router (it remembers the "
                "responses it routed, per process and for a limited time)", "invalid_request_error",
                "response_not_found")), None
        return mut.immediate(404, api_error_body(
            api, 404, f"Invalid URL ({method} {path[:200]}): no model serves this path on this router "
            "(routing.path_models)", "invalid_request_error", "unknown_url")), None
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    rewrite_body = reason == "path" and media == "application/json" and not end_of_stream
    if rewrite_body:
        try:  # a compressed JSON body cannot have its model set: refused, as on the APIs' paths
            check_content_encoding(headers.get("content-encoding"))
        except RequestError as e:
            api = "messages" if ANTHROPIC_VERSION in headers else "chat"
            return mut.immediate(e.status, api_error_body(api, e.status, e.message, e.type, e.code)), None
    route = {**mut.route_headers(cfg.routing, model, lambda: endpoint or rt.picker.pick(model).hostport),
             H.SELECTED_MODEL: model.name, H.DECISION_REASON: reason}
    rt.shared.metrics.record_request(model.name, reason)
    if rewrite_body:  # body follows; its model set there
        return mut.continue_request_headers(route, remove=remove, clear_route_cache=True), model.name
    return mut.continue_request_headers(route, remove=remove, mode=mut.skip_bodies_mode(), clear_route_cache=True), None


def _response_id(path: str) -> str | None:
    """The id in /v1/responses/{id}[/...], else None."""
    parts = path.split("/")  # "", "v1", "responses", id, ...
    if len(parts) < 4 or parts[2].lower() != "responses" or not parts[3]:
        return None
    return parts[3]


def _stored_response_owner(rt: Runtime, path: str, headers: Mapping[str, str]) -> Owner | None:
    """Who stored the response a /v1/responses/{id} path names, when the router routed it for this request's tenant
    (another tenant's id is unknown here: server/conversations.py)."""
    response_id = _response_id(path)
    if response_id is None:
        return None
    owner = rt.shared.response_owners.get(tenant_of(rt.config.cache, headers), response_id)
    return owner if owner is not None and rt.config.model(owner.model) is not None else None


def path_body_reply(body: bytes, model: str, max_bytes: int) -> pb.ProcessingResponse:
    """The JSON body of a path_models request with `model` set (an OpenAI-style 400/413 if it is not JSON)."""
    try:
        obj = load_json_object(body, max_bytes)
    except RequestError as e:
        return mut.immediate(e.status, e.body())
    obj["model"] = model
    new = body_json.dumps(obj)
    return mut.continue_request_body(new, {"content-length": str(len(new))}, clear_route_cache=False)
