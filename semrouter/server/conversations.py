"""Where Responses-API conversation state lives: the model and endpoint that produced each response id.

OpenAI Responses keeps a conversation upstream: a follow-up names the previous answer in
`previous_response_id`, and only the server that stored that answer can continue it (vLLM keeps responses in
its own process). The router cannot see those earlier turns; what it can do is remember, from the answers its
observer sees, which model and endpoint produced each response id, and send a follow-up there
(reason `previous_response`) instead of wherever this turn's signals would send it, unless the PII policy
forbids that model. The table is per router process, bounded in size and age (least recently used first);
a follow-up to an id it does not know (expired, another router replica, stored elsewhere) is routed as usual.

Ids are scoped by tenant (request/tenant.py: the keyed hash of the credential, or the trusted header): an id is
remembered under the tenant whose request produced it, and another tenant's follow-up or retrieve naming it is
treated exactly like an unknown id (trust18: a client that learnt another tenant's response id had its follow-up
routed to that conversation's endpoint). A request without a tenant (no credential while `cache.allow_anonymous`
is off) is neither remembered nor followed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

from semrouter.config.schema import Config
from semrouter.decision.engine import Decision, pii_violations
from semrouter.request.parse import ChatRequest
from semrouter.server.aging_map import AgingMap
from semrouter.signals.types import Analysis


@dataclass(frozen=True, slots=True)
class Owner:
    """The model (config name) and endpoint (host:port) that produced a Responses id."""

    model: str
    endpoint: str  # host:port


class ResponseOwners:
    """(tenant label, response id) → the `Owner` (model, endpoint) that produced it; bounded (server/aging_map.py).
    A tenant of None is never stored nor found."""

    def __init__(self, max_entries: int = 100_000, max_age_s: float = 7 * 86_400.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._items: AgingMap[tuple[str, str], Owner] = AgingMap(max_entries, max_age_s, clock)

    def __len__(self) -> int:
        return len(self._items)

    def put(self, tenant: str | None, response_id: str, model: str, endpoint: str) -> None:
        """Record (or refresh) who answered `response_id` for `tenant`; evicts the oldest beyond the bounds. Nothing
        is recorded without a tenant."""
        if tenant is not None:
            self._items.put((tenant, response_id), Owner(model, endpoint))

    def get(self, tenant: str | None, response_id: str) -> Owner | None:
        """Who answered `response_id` for `tenant`; None when unknown, older than the age bound, produced for
        another tenant, or `tenant` is None."""
        return self._items.get((tenant, response_id)) if tenant is not None else None


def follow(cfg: Config, owners: ResponseOwners, req: ChatRequest, d: Decision,
           analysis: Analysis | None, tenant: str | None) -> tuple[Decision, str | None]:
    """The decision for a Responses follow-up of `tenant`'s (request/tenant.py label), and the endpoint (host:port)
    to prefer: the previous answer's model (only for `auto`, and only when its PII policy allows what this turn
    carries) and endpoint, when that answer was produced for the same tenant."""
    prev = req.body.get("previous_response_id") if req.api == "responses" else None
    owner = owners.get(tenant, prev) if isinstance(prev, str) else None
    if owner is None or d.refusal is not None:
        return d, None
    model = cfg.model(owner.model)
    if model is None:
        return d, None
    if owner.model != d.model:
        if d.reason == "explicit" or (analysis is not None and pii_violations(model, analysis.pii)):
            return d, None
        d = dataclasses.replace(d, model=owner.model, reason="previous_response")
    return d, owner.endpoint if any(e.hostport == owner.endpoint for e in model.endpoints) else None
