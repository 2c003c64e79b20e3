"""PII policy check: which detected types a model may not receive (pure function)."""

from __future__ import annotations

from collections.abc import Sequence

from semrouter.signals.types import PIIEntity


def violations(allow_by_default: bool, allowed_types: Sequence[str], found: Sequence[PIIEntity]) -> set[str]:
    """The detected PII types this model may not see; empty set = the request is fine for it.

    Mirrors `PIIPolicy` in semrouter/config/schema.py: `allow_by_default=True` allows every type;
    `False` allows only `allowed_types` (compared case-insensitively).
    """
    if allow_by_default:
        return set()
    allowed = {t.upper() for t in allowed_types}
    return {e.type for e in found if e.type.upper() not in allowed}
