"""PII policy: which detected types a model may not receive; PIIConfig validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from semrouter.config.schema import PIIPolicy
from semrouter.signals.pii import ALL_TYPES, PIIConfig, violations
from semrouter.signals.types import PIIEntity

EMAIL = PIIEntity("EMAIL_ADDRESS", 0, 5, "a@b.c")
PERSON = PIIEntity("PERSON", 6, 10, "Anna", 0.9)
SSN = PIIEntity("US_SSN", 11, 22, "123-45-6789")


def test_allow_by_default_allows_everything() -> None:
    assert violations(True, (), [EMAIL, PERSON, SSN]) == set()


def test_deny_by_default_reports_types_not_allowed() -> None:
    assert violations(False, ("EMAIL_ADDRESS",), [EMAIL, PERSON, SSN, PERSON]) == {"PERSON", "US_SSN"}
    assert violations(False, (), [EMAIL]) == {"EMAIL_ADDRESS"}
    assert violations(False, ("person", "email_address"), [EMAIL, PERSON]) == set()


def test_nothing_found_is_never_a_violation() -> None:
    assert violations(False, (), []) == set()


def test_matches_config_schema_policy() -> None:
    policy = PIIPolicy(allow_by_default=False, allowed_types=("PERSON",))
    assert violations(policy.allow_by_default, policy.allowed_types, [PERSON, SSN]) == {"US_SSN"}


def test_pii_config_defaults_and_validation() -> None:
    cfg = PIIConfig()
    assert cfg.enabled and cfg.types == ALL_TYPES and 0 < cfg.min_score < 1
    assert PIIConfig(types=("PERSON", "PERSON")).types == ("PERSON",)
    with pytest.raises(ValidationError):
        PIIConfig(types=("PASSPORT",))
    with pytest.raises(ValidationError):
        PIIConfig(unknown_field=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        PIIConfig(min_score=1.5)
