"""Request headers and body: parse → signals → safety → cache → decision → mutations."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Sequence

import numpy as np
import structlog
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb

from semrouter import headers as H
from semrouter.cache.keys import tenant_of
from semrouter.config.schema import Config
from semrouter.decision.engine import Decision, category_vote, decide, is_auto
from semrouter.decision.needs import policy_signals, signals_needed
from semrouter.decision.safety import UNSCORED, SafetyVerdict, safety_verdict
from semrouter.request import apis
from semrouter.request.errors import RequestError
from semrouter.request.parse import ChatRequest, check_content_encoding, check_content_type, content_text
from semrouter.request.paths import canonical_path, query_of
from semrouter.request.window import Window, analysis_window
from semrouter.response import apis as api_replies
from semrouter.response import openai
from semrouter.runtime import Runtime
from semrouter.server import conversations, paths
from semrouter.server import mutations as mut
from semrouter.server.inflight import new_join_key
from semrouter.server.state import Routed, StreamState
from semrouter.signals.config import analysis_cost
from semrouter.signals.onnx.segments import default_read_rows, segment_budget
from semrouter.signals.pii.whole_request import with_whole_request_pii
from semrouter.signals.types import Analysis, language_of
from semrouter.telemetry.logging import hide_in_logs, loggable

log = structlog.get_logger("semrouter.request")

REFUSAL_TEXT = "I can't help with that request."
_UNTRUSTED = H.ROUTER_SET


def on_request_headers(rt: Runtime, st: StreamState, msg: pb.HttpHeaders) -> pb.ProcessingResponse:
    """The request's headers (first message of a decision stream) → the reply for the request_headers phase.

    Records method, canonical path, x-request-id and the headers in `st`, and sets `st.kind`:
    - GET or HEAD /v1/models[/{id}] ("models"): answered here (immediate 200, or 404 `model_not_found`; Envoy
      sends a HEAD's answer without its body).
    - POST on a chat/Responses/Messages path ("chat"): CONTINUE with the router's header namespace removed and a
      path variant rewritten to its canonical spelling; the body comes next (on_request_body). Immediate 415
      `unsupported_media_type` for a non-JSON content type, 415 `unsupported_content_encoding` for a compressed
      body, 400 `missing_body` when the headers end the request.
    - another method on those paths: immediate 405 `method_not_allowed` (`allow: POST`).
    - any other path: to the model `routing.path_models` names ("path" when a JSON body follows to get its
      `model` set, else "passthrough" with bodies and response phases off), else 404 `unknown_url`.
    Error replies are in the client's API's shape (`st.api`). Client mistakes never raise; an unexpected error
    propagates to the stream loop (server/stream.py), which answers 500 `router_error`.
    """
    h = mut.header_map(msg.headers)
    st.headers = h
    st.method = h.get(":method", "").upper()
    raw_path = h.get(":path", "")
    st.path = canonical_path(raw_path)
    st.request_id = loggable(h.get(H.REQUEST_ID))
    hide_in_logs(v for k, v in h.items() if k in H.SENSITIVE)
    if st.method in ("GET", "HEAD") and (st.path == paths.MODELS_PATH or st.path.startswith(paths.MODELS_PATH + "/")):
        st.kind = "models"
        return paths.models_reply(rt.config, canonical_path(raw_path, fold_case=False), h)
    if st.path in apis.API_PATHS and st.method != "POST":
        st.api = apis.API_PATHS[st.path]
        return _error_reply(st, RequestError(405, f"Method {st.method or '?'} is not allowed on {st.path}; use POST",
                                             "invalid_request_error", "method_not_allowed"), {"allow": "POST"})
    if st.method == "POST" and st.path in apis.API_PATHS:
        st.kind = "chat"
        st.api = apis.API_PATHS[st.path]
        try:
            check_content_type(h.get("content-type"))
            check_content_encoding(h.get("content-encoding"))
            if msg.end_of_stream:
                raise RequestError(400, f"Request body is empty; send a JSON request for {st.path}",
                                   "invalid_request_error", "missing_body")
        except RequestError as e:
            return _error_reply(st, e)
        # Client-supplied routing and decision headers are never trusted: the router sets them later (Envoy has
        # removed them already; this is the second line). A path variant goes upstream in its one spelling.
        canonical = st.path + query_of(raw_path)
        return mut.continue_request_headers({":path": canonical} if raw_path != canonical else None,
                                            remove=_UNTRUSTED)
    # Any other path, in /v1/ or not, goes only where routing.path_models sends it, else 404: never silently to the
    # default model (an upstream's own endpoints, e.g. vLLM's /metrics, /tokenize or /sleep, are not public).
    st.kind = "passthrough"
    reply, st.path_model = paths.other_path_reply(rt, st.method, canonical_path(raw_path, fold_case=False), h,
                                                  _UNTRUSTED, msg.end_of_stream)
    if st.path_model is not None:
        st.kind = "path"
    return reply


async def on_request_body(rt: Runtime, st: StreamState) -> pb.ProcessingResponse:
    """The buffered body (`st.body_parts`, all of it, or the first bytes past `server.max_body_bytes`) → the reply
    for the request_body phase: parse → exact cache → signals → safety → semantic cache → decision.

    One of: CONTINUE with the rewritten body (`model`, reasoning switch, system prompt), the routing headers and
    `clear_route_cache` (the decision; the request is remembered in the inflight table under a fresh join nonce
    for the observer); an immediate 200 (cache hit, or a jailbreak refusal with finish_reason content_filter) in
    the API's answer shape, JSON or SSE; or an immediate error in the API's error shape: 400 `invalid_json` /
    `invalid_value` (with `param`), 413 `request_too_large`, 404 `model_not_found`, 403 `pii_not_allowed`.
    Signal and cache failures never fail the request (routed on what is left, counted). For kind "path": the
    body with `model` set (server/paths.py). Unexpected errors propagate (500 `router_error` from the loop).
    """
    body = b"".join(st.body_parts)
    st.body_parts.clear()
    cfg = rt.config
    if st.kind == "path" and st.path_model is not None:
        return paths.path_body_reply(body, st.path_model, cfg.server.max_body_bytes)
    tracer = rt.shared.tracer
    try:
        with tracer.span("parse", request_id=st.request_id, bytes=len(body)):
            req = apis.parse(st.api, body, cfg.server.max_body_bytes)
    except RequestError as e:
        rt.shared.metrics.record_error(None, e.code)
        return _error_reply(st, e)
    hide_in_logs(_message_texts(req))

    # An exact repeat (normalised prompt hash, same scope) is answered before any signal runs; the scope includes
    # the answer policies' fingerprint, so it was answered under the same guard and PII policies.
    cache_key = (rt.cache.key_for(req, st.headers, policy=rt.policy.for_request(cfg, req.model))
                 if rt.cache is not None else None)
    if cache_key is not None:
        with tracer.span("cache_lookup_exact", request_id=st.request_id):
            hit = await rt.cache.lookup(cache_key, None, stage="exact")
        if hit is not None:
            rt.shared.metrics.record_cache_hit()
            return _cache_reply(rt, st, req, hit, None)

    window = analysis_window(req.text_for(cfg.routing.classify_text), cfg.server.analysis_head_chars,
                             cfg.server.analysis_tail_chars)
    text = window.text
    if window.skipped_chars:  # the signals (and so the prompt embedding) saw part of it: no semantic cache
        rt.shared.metrics.record_analysis_truncated()
        cache_key = None
    with tracer.span("signals", request_id=st.request_id) as span:
        keyword = rt.keywords.evaluate(text)
        want = signals_needed(cfg, req.model, cacheable=cache_key is not None)
        # nothing to score and no cache to embed for: no encoder pass at all
        windows = _safety_windows(cfg, req) if "jailbreak" in want else []
        extra = [w.text for w in windows]
        analysis = await _analyze(rt, st, text, want, extra) if want or cache_key is not None else None
        if analysis is not None and "jailbreak" in want:
            analysis = _with_window_coverage(analysis, [window, *windows])
        missing = _policy_signals_missing(rt, req.model, want, analysis)
        if missing and cfg.server.signals_unavailable == "refuse":
            log.warning("signals_unavailable_refused", request_id=st.request_id, signals=sorted(missing))
            rt.shared.metrics.record_error(req.model, "signals_unavailable")
            return _error_reply(st, RequestError(
                503, "The router could not check this request against its policies in time; retry shortly",
                "service_unavailable", "signals_unavailable"), {"retry-after": "1"})
        if cache_key is not None and (missing or _pii_unknown(cfg, want, analysis)):
            # routed without a policy's signals (signals_unavailable: route), or without the PII check the store
            # rule reads (cache.skip_pii): its answer is not stored, or a repeat would get it unchecked later
            cache_key = None
        if analysis is not None and "pii" in want:
            # a model's PII policy covers the whole request: system prompt, earlier turns, tool results
            analysis = with_whole_request_pii(analysis, getattr(rt.analyzer, "pii", None),
                                              req.unclassified_text(cfg.routing.classify_text),
                                              cfg.server.analysis_head_chars, cfg.server.analysis_tail_chars,
                                              definitions=req.definitions_text)
        language = await language_of(rt.language, text, analysis)
        vote = category_vote(cfg, keyword, analysis, language)
        category = vote.category if vote else None
        span.set_attribute("category", category or "")

    metrics = rt.shared.metrics
    verdict = safety_verdict(cfg, analysis, category)
    if analysis is not None and analysis.safety_coverage < 1.0:  # more text than the segment budgets cover
        action = "block" if verdict.blocked_by == UNSCORED else "allow"
        log.warning("safety_partial_coverage", request_id=st.request_id, coverage=round(analysis.safety_coverage, 3),
                    action=action)
        metrics.record_safety_partial_coverage(action)
    if verdict.blocked_by is not None:
        metrics.record_jailbreak_block(req.model)
        return _jailbreak_reply(st, req, verdict, category)
    if verdict.reported:
        log.info("safety_reported", request_id=st.request_id, category=category,
                 labels={lab: round(s, 4) for lab, s in verdict.reported})
        # the highest report-only label travels on the forwarded request; Envoy copies it onto the answer
        st.result_headers[H.JAILBREAK_TYPE] = max(verdict.reported, key=lambda x: x[1])[0]

    if cache_key is not None:
        with tracer.span("cache_lookup", request_id=st.request_id) as span:
            vec = _prompt_embedding(cfg, req, analysis)
            hit, miss_reason = await rt.cache.lookup_with_reason(
                cache_key, category, embedding=vec, stage="semantic", language=_prompt_language(cfg, req, analysis))
            span.set_attribute("hit", hit is not None)
        if hit is not None:
            metrics.record_cache_hit()
            return _cache_reply(rt, st, req, hit, category)
        metrics.record_cache_miss(miss_reason)

    with tracer.span("decide", request_id=st.request_id) as span:
        decision = decide(cfg, req.model, keyword, analysis, language)
        span.set_attribute("model", decision.model)
        span.set_attribute("reason", decision.reason)
    if decision.refusal is not None:
        r = decision.refusal
        hdrs = {H.PII_VIOLATION: ",".join(r.types)} if r.types else {}
        if r.types:
            metrics.record_pii_block(decision.model, r.types)
        else:
            metrics.record_error(decision.model, r.code)
        return _error_reply(st, RequestError(r.status, r.message, "invalid_request_error", r.code), hdrs, decision)
    # A Responses follow-up goes where its conversation is stored (server/conversations.py).
    tenant = tenant_of(cfg.cache, st.headers) if req.api == "responses" else None
    decision, prefer = conversations.follow(cfg, rt.shared.response_owners, req, decision, analysis, tenant)
    return _forward(rt, st, req, decision, cache_key, analysis, prefer, tenant)


def on_request_trailers(st: StreamState) -> pb.ProcessingResponse:
    """Request trailers (shipped configs: request_trailer_mode SEND) → the reply for the request_trailers phase.

    A chat/Responses/Messages request, or a routing.path_models JSON request, still undecided here sent trailers and
    no body (HTTP/2: headers, then trailers): Envoy sends no body message for it, so the router answers 400
    `missing_body` rather than let it go on undecided. Otherwise (the body came and was decided, or a path the
    router does not read) a plain CONTINUE."""
    if st.kind in ("chat", "path") and not st.decided:
        st.decided = True
        return _error_reply(st, RequestError(400, f"Request body is empty; send a JSON request for {st.path}",
                                             "invalid_request_error", "missing_body"))
    return mut.continue_plain("request_trailers")


def _message_texts(req: ChatRequest) -> list[str]:
    """Every message's text, to be kept out of the logs."""
    return [content_text(m.get("content")) for m in req.messages]


def _pii_unknown(cfg: Config, want: frozenset[str], analysis: Analysis | None) -> bool:
    """Whether the PII signal was wanted, the cache's store rule reads it (cache.skip_pii) and it did not come."""
    return cfg.cache.skip_pii and "pii" in want and (analysis is None or "pii" in analysis.errors)


def _prompt_embedding(cfg: Config, req: ChatRequest, analysis: Analysis | None) -> np.ndarray | None:
    """The analysed text's embedding, when that text is the cache key's prompt (the last user message)."""
    which = cfg.routing.classify_text  # "conversation" prefixes the role, so its text is never the prompt
    same_text = which == "last_user" or (which == "all_user" and len(req.messages) == 1)
    return analysis.embedding if analysis is not None and same_text else None


def _prompt_language(cfg: Config, req: ChatRequest, analysis: Analysis | None) -> str | None:
    """The analysed text's language, when that text is the cache key's prompt (else None: unknown)."""
    return analysis.language if _prompt_embedding(cfg, req, analysis) is not None and analysis is not None else None


def _policy_signals_missing(rt: Runtime, model: str, want: frozenset[str], analysis: Analysis | None) -> frozenset[str]:
    """The signals a blocking policy of this request needs (decision/needs.policy_signals) that the analysis did
    not deliver: all of them when the analyzer is configured but gave nothing (over budget, failed), else those
    whose model failed (`analysis.errors`). Empty when the signals are off (no analyzer: no such policy runs)."""
    if rt.analyzer is None:
        return frozenset()
    needed = policy_signals(rt.config, model) & want
    if analysis is None:
        return needed
    return needed & frozenset(analysis.errors)


def _safety_windows(cfg: Config, req: ChatRequest) -> list[Window]:
    """The request's untrusted texts the safety scores read beside the classified one (signals.jailbreak.read;
    ChatRequest.safety_texts), each cut to the analysis windows like the classified text (server.analysis_head_chars
    and analysis_tail_chars), in priority order."""
    server = cfg.server
    return [analysis_window(t, server.analysis_head_chars, server.analysis_tail_chars)
            for t in req.safety_texts(cfg.signals.jailbreak.read, cfg.routing.classify_text)]


def _with_window_coverage(analysis: Analysis, windows: Sequence[Window]) -> Analysis:
    """`analysis` with its safety coverage at most the share of characters the analysis windows kept (`windows`: the
    classified text's and the other texts'). review18: the middle of a text longer than the windows is never read,
    but the coverage counted only the segment budgets, so with on_partial_coverage: block an attack in the middle of
    a 14,000-character tool result was forwarded at coverage 1.0. Unchanged (the same object) when no window cut."""
    skipped = sum(w.skipped_chars for w in windows)
    if not skipped:
        return analysis
    kept = sum(len(w.text) for w in windows)
    share = kept / (kept + skipped)
    return dataclasses.replace(analysis, safety_coverage=min(analysis.safety_coverage, share))


async def _analyze(rt: Runtime, st: StreamState, text: str, want: frozenset[str],
                   extra: Sequence[str] = ()) -> Analysis | None:
    """The signals in `want` (see decision/needs.py); None when the analyzer is off or failed. `extra`: the
    request's other texts the safety scores read (`_safety_windows`)."""
    if rt.analyzer is None:
        return None
    metrics = rt.shared.metrics
    server = rt.config.server
    # the safety head reads `extra` within its segment budgets (unset: the shipped head's 16 rows; the larger of the
    # prompt's and the other texts' own reserve, signals.jailbreak.read_segments)
    jb = rt.config.signals.jailbreak
    segs = 16 if jb.max_segments is None else jb.max_segments
    rows = max(segs, default_read_rows(segs) if jb.read_segments is None else jb.read_segments)
    cost = analysis_cost(text) + min(sum(map(analysis_cost, extra)), segment_budget(rows, rt.config.signals.max_tokens))
    # a long prompt runs in the analyzer's heavy lane (beside the short ones') and costs up to ~10 encoder rows
    budget_ms = max(server.analysis_budget_long_ms, server.analysis_budget_ms) \
        if cost > rt.config.signals.long_prompt_chars else server.analysis_budget_ms
    budget_s = budget_ms / 1000
    try:
        # the deadline lets the analyzer skip a run that could not end in time (it would only delay the others)
        deadline = time.monotonic() + budget_s
        analysis = await asyncio.wait_for(rt.analyzer.analyze(text, want, deadline, extra), budget_s)
    except TimeoutError:  # defined overrun (or known in advance): route without the signals, as for a failing model
        log.warning("signals_over_budget", request_id=st.request_id, budget_ms=budget_ms,
                    chars=len(text))
        metrics.record_analysis_budget_exceeded()
        return None
    except Exception as e:  # a failing model must not fail the request: route on what is left
        log.warning("signals_failed", request_id=st.request_id, error=type(e).__name__)
        metrics.record_signal_error("analyzer")
        return None
    metrics.observe_classifier_timings_ms(analysis.timings_ms)
    for name in analysis.errors:
        metrics.record_signal_error(name)
    return analysis


def _forward(rt: Runtime, st: StreamState, req: ChatRequest, d: Decision, cache_key: object,
             analysis: Analysis | None, prefer: str | None = None, tenant: str | None = None) -> pb.ProcessingResponse:
    cfg = rt.config
    model = cfg.model(d.model)
    assert model is not None
    auto = is_auto(cfg, req.model)
    endpoint = next((e for e in model.endpoints if e.hostport == prefer and not rt.shared.health.is_down(prefer)),
                    None) or rt.picker.pick(model)
    new_body = apis.rewrite(req, model, d.use_reasoning if auto else None, d.system_prompt if auto else None)
    route_headers = {"content-length": str(len(new_body)),
                     **mut.route_headers(cfg.routing, model, lambda: endpoint.hostport)}
    st.routed = Routed(decision=d, endpoint=endpoint.hostport, stream=req.stream, api=req.api, cache_key=cache_key,
                       has_pii=bool(analysis and analysis.pii),
                       embedding=_prompt_embedding(cfg, req, analysis) if cache_key is not None else None,
                       language=_prompt_language(cfg, req, analysis) if cache_key is not None else None,
                       tenant=tenant)
    st.result_headers.update(_decision_headers(d, model.reasoning_family is not None))
    route_headers.update(st.result_headers)  # Envoy copies these to the answer (see envoy/envoy.yaml)
    st.join = new_join_key()  # the observer joins the answer by this, never by the client-choosable x-request-id
    route_headers[H.JOIN] = st.join
    rt.shared.inflight.put(st.join, rt, st.routed, st.started_at, st.request_id)
    m = rt.shared.metrics
    m.record_request(model.name, d.reason)
    m.record_routing_modification(req.model, model.name)
    m.record_category(d.category)
    if d.language is not None:
        m.record_language(d.language)
    if auto and model.reasoning_family is not None:
        m.record_reasoning(d.category, model.name, d.use_reasoning,
                           model.reasoning_family.effort if model.reasoning_family.type == "reasoning_effort" else None)
    m.observe_routing_latency(time.monotonic() - st.started_at)
    _log_decision(st, d, endpoint.hostport, analysis)
    return mut.continue_request_body(new_body, route_headers)


def _decision_headers(d: Decision, has_reasoning: bool) -> dict[str, str]:
    out = {H.SELECTED_MODEL: d.model, H.DECISION_REASON: d.reason,
           H.SELECTED_REASONING: "on" if d.use_reasoning else "off"}
    if d.reported_category:
        out[H.SELECTED_CATEGORY] = d.reported_category
    if d.complexity is not None:
        out[H.COMPLEXITY] = f"{d.complexity:.3f}"
    if d.language is not None:
        out[H.LANGUAGE] = d.language
    return out


def _log_decision(st: StreamState, d: Decision, endpoint: str, analysis: Analysis | None) -> None:
    log.info(
        "routing_decision",
        request_id=st.request_id,
        api=st.api,
        requested_model=loggable(d.source_model),  # any string the client sent (auto in any case)
        model=d.model,
        category=d.category,
        category_guess=d.category_guess,
        language=d.language,
        confidence=None if d.confidence is None else round(d.confidence, 4),
        complexity=None if d.complexity is None else round(d.complexity, 4),
        small_model_wrong=None if analysis is None or analysis.small_model_wrong is None
        else round(analysis.small_model_wrong, 4),
        reasoning=d.use_reasoning,
        reason=d.reason,
        endpoint=endpoint,
        signal_errors=list(analysis.errors) if analysis else None,
        latency_ms=round((time.monotonic() - st.started_at) * 1000, 3),
    )


def _error_reply(st: StreamState, e: RequestError, extra: dict[str, str] | None = None,
                 d: Decision | None = None) -> pb.ProcessingResponse:
    """The error as an immediate reply in the client's API's error shape (OpenAI or Anthropic)."""
    log.info("request_refused", request_id=st.request_id, status=e.status, code=e.code,
             model=loggable(d.model) if d else None, latency_ms=round((time.monotonic() - st.started_at) * 1000, 3))
    hdrs = dict(extra or {})
    if d is not None:
        hdrs[H.DECISION_REASON] = d.reason
    return mut.immediate(e.status, api_replies.error_body(st.api, e.status, e.message, e.type, e.code, e.param), hdrs)


def _jailbreak_reply(st: StreamState, req: ChatRequest, verdict: SafetyVerdict,
                     category: str | None) -> pb.ProcessingResponse:
    refusal = openai.completion(req.model, REFUSAL_TEXT, finish_reason="content_filter")
    body, ctype = api_replies.render(req.api, refusal, req.stream, req.model, include_usage=False)
    log.info("jailbreak_blocked", request_id=st.request_id, type=verdict.blocked_by, score=round(verdict.score, 4),
             category=category, latency_ms=round((time.monotonic() - st.started_at) * 1000, 3))
    return mut.immediate(200, body, {H.JAILBREAK_BLOCKED: "true", H.JAILBREAK_TYPE: verdict.blocked_by or "",
                                     H.JAILBREAK_SCORE: f"{verdict.score:.3f}", H.DECISION_REASON: "jailbreak"},
                         content_type=ctype)


def _answered_by(stored: bytes, requested: str) -> str:
    """The model a cached answer names (the stored chat.completion's `model`, which the replay also carries)."""
    try:
        model = json.loads(stored).get("model")
    except (ValueError, AttributeError):
        model = None
    return model if isinstance(model, str) and model else requested


def _cache_reply(rt: Runtime, st: StreamState, req: ChatRequest, hit: object, category: str | None) -> pb.ProcessingResponse:
    if req.api == "chat":  # stream_options is a chat field (validated there); other APIs pass it untouched
        include_usage = bool((req.body.get("stream_options") or {}).get("include_usage", False))
        body, ctype = rt.cache.render_hit(hit, req.stream, req.model, include_usage=include_usage)
    else:  # stored as a chat.completion (see response_phase._finish); replayed in the client's API
        stored = json.loads(hit.body)
        body, ctype = api_replies.render(req.api, stored, req.stream, stored.get("model") or req.model)
    sim = getattr(hit, "similarity", 1.0)
    log.info("cache_hit", request_id=st.request_id, similarity=round(sim, 4), category=category,
             exact=getattr(hit, "exact", False), latency_ms=round((time.monotonic() - st.started_at) * 1000, 3))
    hdrs = {H.CACHE_HIT: "true", H.CACHE_SIMILARITY: f"{sim:.4f}", H.DECISION_REASON: "cache_hit",
            H.SELECTED_MODEL: _answered_by(getattr(hit, "body", b""), req.model)}
    if category:
        hdrs[H.SELECTED_CATEGORY] = category
    return mut.immediate(200, body, hdrs, content_type=ctype)
