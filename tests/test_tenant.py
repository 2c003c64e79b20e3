"""Tenant labels (semrouter/request/tenant.py): from a credential by default, a client-sent tenant header is
ignored, labels cannot be forged by sending their hash form, and the config names the fix for the old mode."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from semrouter.cache.config import CacheConfig
from semrouter.cache.keys import tenancy
from semrouter.request.tenant import ANONYMOUS, Tenancy


def make(source: str = "credential", key: str = "", **kw: object) -> Tenancy:
    return Tenancy.create(source, ("authorization", "x-api-key"), "x-user-id", True,  # type: ignore[arg-type]
                          environ={"SEMROUTER_TENANT_KEY": key}, **kw)  # type: ignore[arg-type]


def test_default_is_the_credential_and_client_tenant_headers_are_ignored() -> None:
    t = tenancy(CacheConfig())
    assert t.source == "credential"
    assert t.tenant({"x-user-id": "alice"}) == ANONYMOUS
    alice = t.tenant({"authorization": "Bearer sk-alice"})
    assert alice is not None and alice.startswith("c:") and "alice" not in alice
    assert t.tenant({"authorization": "Bearer sk-alice", "x-user-id": "bob"}) == alice
    assert t.tenant({"authorization": "Bearer sk-bob"}) != alice
    assert t.tenant({"x-api-key": "sk-alice"}) not in (alice, ANONYMOUS)  # another header, another tenant


def test_labels_cannot_be_forged_by_sending_them() -> None:
    cred = make()
    alice = cred.tenant({"authorization": "Bearer sk-alice"})
    assert alice is not None
    for forged in (alice, alice[2:], "anonymous"):
        assert cred.tenant({"x-user-id": forged}) == ANONYMOUS
        assert cred.tenant({"authorization": forged}) != alice
    trusted = make("trusted_header")
    assert trusted.tenant({"x-user-id": alice}) != alice  # a trusted value lives under t:, never c:
    assert trusted.tenant({"x-user-id": "anonymous"}) == "t:anonymous"
    assert trusted.tenant({"authorization": "Bearer sk-alice"}) == ANONYMOUS
    odd = trusted.tenant({"x-user-id": "a b\" or 1==1"})
    assert odd is not None and odd.startswith("t:h:") and " " not in odd


def test_the_key_changes_every_label_and_is_reported() -> None:
    plain, keyed = make(), make(key="s3cret-key")
    h = {"authorization": "Bearer sk-alice"}
    assert not plain.keyed and keyed.keyed
    assert plain.tenant(h) != keyed.tenant(h) != make(key="other-key").tenant(h)
    assert keyed.tenant(h) == make(key="s3cret-key").tenant(h)  # stable across restarts and replicas


def test_no_tenant_without_anonymous_means_not_cached() -> None:
    t = Tenancy.create("credential", ("authorization",), "x-user-id", False, environ={})
    assert t.tenant({}) is None and t.tenant({"authorization": "  "}) is None


def test_config_errors_name_the_fix() -> None:
    with pytest.raises(ValidationError) as e:
        CacheConfig.model_validate({"tenant_from": "header"})
    assert "trusted_header" in str(e.value) and "credential" in str(e.value)
    assert CacheConfig.model_validate({"tenant_from": "authorization_hash"}).tenant_from == "credential"
    with pytest.raises(ValidationError):
        CacheConfig.model_validate({"credential_headers": [""]})
    assert CacheConfig.model_validate({"credential_headers": ["X-Api-Key"]}).credential_headers == ("x-api-key",)
