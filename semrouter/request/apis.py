"""The client APIs the router decides, by path: one internal request model (`ChatRequest`) for all three.

    /v1/chat/completions -> "chat"       (request/parse.py)
    /v1/responses        -> "responses"  (request/responses_api.py, OpenAI Responses)
    /v1/messages         -> "messages"   (request/anthropic.py, Anthropic Messages)

`parse` turns a body into the internal request; `rewrite` applies a decision to the body in the client's
own API, which is what the upstream receives.
"""

from __future__ import annotations

from semrouter.config.schema import Model, SystemPrompt
from semrouter.request import anthropic, responses_api
from semrouter.request.errors import RequestError
from semrouter.request.parse import Api, ChatRequest, parse_chat_request
from semrouter.request.rewrite import rewrite_body
from semrouter.request.validate import check_message_count, load_json_object

API_PATHS: dict[str, Api] = {
    "/v1/chat/completions": "chat",
    "/v1/responses": "responses",
    "/v1/messages": "messages",
}


def parse(api: Api, raw: bytes, max_bytes: int) -> ChatRequest:
    """Validate and convert a request body of `api`; raises RequestError (status, code, param)."""
    if api == "chat":
        return parse_chat_request(raw, max_bytes)
    body = load_json_object(raw, max_bytes)
    items = body.get("input") if api == "responses" else body.get("messages")
    if isinstance(items, list):  # bounded before the conversion walks them
        check_message_count(len(items), "input" if api == "responses" else "messages")
    return responses_api.parse(body) if api == "responses" else anthropic.parse(body)


def rewrite(req: ChatRequest, model: Model, use_reasoning: bool | None, system_prompt: SystemPrompt | None) -> bytes:
    """The body forwarded upstream, in the client's API (`use_reasoning` None: reasoning fields as sent)."""
    if req.api == "responses" and req.source is not None:
        return responses_api.rewrite(req.source, model, use_reasoning, system_prompt)
    if req.api == "messages" and req.source is not None:
        return anthropic.rewrite(req.source, model, use_reasoning, system_prompt)
    return rewrite_body(req.body, model, use_reasoning, system_prompt)


def explain_request(text: str, model: str, api: str = "", request_json: str = "",
                    max_bytes: int = 4 * 1024 * 1024) -> ChatRequest:
    """The request `semrouter cache explain` keys: `request_json` parsed as a body of `api` (chat, responses or
    messages; empty = chat) when given, else `text` as the only user message of a chat request for `model` with
    no parameters. Raises ValueError for an unknown api, or a body the router would refuse (naming the field)."""
    if request_json:
        which = next((a for a in API_PATHS.values() if a == (api or "chat")), None)
        if which is None:
            raise ValueError(f"api must be one of {sorted(API_PATHS.values())}, got {api!r}")
        try:
            return parse(which, request_json.encode("utf-8", "surrogatepass"), max_bytes)
        except RequestError as e:
            raise ValueError(f"request_json: {e.message}") from None
    msgs = ({"role": "user", "content": text},)
    return ChatRequest(body={"model": model, "messages": list(msgs)}, model=model, messages=msgs, stream=False)
