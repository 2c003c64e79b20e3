"""Every header name semrouter reads or writes, in one place.

Names under x-vsr-* follow vLLM Semantic Router so existing dashboards, tests and Envoy
configs keep working; x-semrouter-* are our own additions.
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
JAILBREAK_BLOCKED = "x-vsr-jailbreak-blocked"
PII_VIOLATION = "x-vsr-pii-violation"
CACHE_HIT = "x-vsr-cache-hit"
CACHE_SIMILARITY = "x-vsr-cache-similarity"
REQUEST_ID_OUT = "x-request-id"
# Set by the router on the forwarded request; Envoy copies them to the client's response
# (route `response_headers_to_add` with %REQ(...)%), so client-sent copies are removed first.
DECISION_HEADERS = (SELECTED_MODEL, SELECTED_CATEGORY, SELECTED_REASONING, DECISION_REASON, COMPLEXITY)

# Client controls.
REQUEST_ID = "x-request-id"
USER_ID = "x-user-id"
AUTHORIZATION = "authorization"
CACHE_CONTROL = "cache-control"
CACHE_BYPASS = "x-semrouter-cache"  # value "bypass" skips lookup and store

# Never logged verbatim.
SENSITIVE = frozenset({"authorization", "cookie", "x-api-key", "proxy-authorization"})
