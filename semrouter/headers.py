"""Every header name semrouter reads or writes, in one place.

Names under x-vsr-* follow vLLM Semantic Router so existing dashboards, tests and Envoy
configs keep working; x-semrouter-* are our own additions.

Trust: the router's namespace (ROUTER_PREFIXES, plus x-selected-model) is written only by the router. Every
shipped Envoy config removes client-sent copies before route selection (HCM early header mutation), except
the client controls in CLIENT_CONTROLS; tests/test_envoy_configs.py checks each config against this module.
"""

# Request side: set by the router for Envoy's routing (client-supplied copies are removed).
CLUSTER = "x-semrouter-cluster"  # Envoy `cluster_header` route target
DESTINATION_ENDPOINT = "x-vsr-destination-endpoint"  # host:port for an ORIGINAL_DST cluster
SELECTED_MODEL_REQ = "x-selected-model"  # vsr-compatible request header carrying the model
ROUTING_HEADERS = (CLUSTER, DESTINATION_ENDPOINT, SELECTED_MODEL_REQ)

# Response side: what the router tells the client about its decision.
SELECTED_MODEL = "x-vsr-selected-model"
SELECTED_CATEGORY = "x-vsr-selected-category"
SELECTED_REASONING = "x-vsr-selected-reasoning"
DECISION_REASON = "x-semrouter-reason"
COMPLEXITY = "x-semrouter-complexity"
LANGUAGE = "x-vsr-language"  # ISO 639-1 code of the prompt's language (or "und"), from the language signal
JAILBREAK_BLOCKED = "x-vsr-jailbreak-blocked"
JAILBREAK_TYPE = "x-vsr-jailbreak-type"  # jailbreak | injection (| harmful when an operator blocks it)
JAILBREAK_SCORE = "x-vsr-jailbreak-score"
PII_VIOLATION = "x-vsr-pii-violation"
CACHE_HIT = "x-vsr-cache-hit"
CACHE_SIMILARITY = "x-vsr-cache-similarity"
REQUEST_ID_OUT = "x-request-id"
# Router-minted, unguessable, single-use: set on the forwarded request, copied onto the answer by Envoy
# (`%REQ(...)%`), and the only key the observer stream joins an answer to its request by (never x-request-id,
# which a client may choose).
JOIN = "x-semrouter-join"
# Set by the router on the forwarded request; Envoy copies them to the client's response
# (route `response_headers_to_add` with %REQ(...)%), so client-sent copies are removed first.
DECISION_HEADERS = (SELECTED_MODEL, SELECTED_CATEGORY, SELECTED_REASONING, DECISION_REASON, COMPLEXITY, LANGUAGE)

# Client controls.
REQUEST_ID = "x-request-id"
USER_ID = "x-user-id"
AUTHORIZATION = "authorization"
ANTHROPIC_VERSION = "anthropic-version"  # sent by Anthropic clients (passed through; picks the /v1/models shape)
CACHE_CONTROL = "cache-control"
CACHE_BYPASS = "x-semrouter-cache"  # value "bypass" skips lookup and store

# The router's namespace: Envoy strips every client-sent header with these prefixes (and x-selected-model)
# before route selection, except CLIENT_CONTROLS.
ROUTER_PREFIXES = ("x-semrouter-", "x-vsr-")
CLIENT_CONTROLS = frozenset({CACHE_BYPASS})
ROUTER_SET = (*ROUTING_HEADERS, *DECISION_HEADERS, JOIN, JAILBREAK_BLOCKED, JAILBREAK_SCORE, PII_VIOLATION,
              CACHE_HIT, CACHE_SIMILARITY)

# Never logged verbatim.
SENSITIVE = frozenset({"authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-goog-api-key",
                       "proxy-authorization", "x-auth-token"})
