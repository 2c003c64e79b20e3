"""Who a request belongs to (its tenant, the scope of cached answers), from headers nobody can forge.

The trust model (docs/SECURITY.md, "Tenants"):

* `tenant_from: credential` (the default): the tenant is a keyed hash of the request's credential, the first
  of `credential_headers` present (default `authorization`, then `x-api-key`). A client can only be a tenant
  whose secret it holds. Label: `c:` + HMAC-SHA256(key, header name + NUL + value), 32 hex digits. The key is
  read from the environment variable named by `tenant_key_env` (default `SEMROUTER_TENANT_KEY`); when it is
  unset the hash is unkeyed (still namespaced, so not forgeable by sending it, but guessable offline for a
  weak credential) and the router logs a warning at start-up. Client-sent tenant headers are ignored.
* `tenant_from: trusted_header`: the tenant is the value of `tenant_header`, which the operator declares to be
  set by Envoy from an authenticated identity (e.g. `jwt_authn` `claim_to_headers`), overwriting any client
  copy. Label: `t:` + the value (or `t:h:` + its hash when it is not a plain name). Only configure this when
  Envoy guarantees that: the router cannot tell a proxy-set header from a client-set one.
* no credential (or no trusted header): the shared tenant `anonymous` when `allow_anonymous`, else none
  (the request is not cached).

Each source has its own prefix, so no value sent one way can equal a label minted another way.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

ANONYMOUS = "anonymous"
DEFAULT_KEY_ENV = "SEMROUTER_TENANT_KEY"
_PLAIN = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
_UNKEYED = b"semrouter-tenant-v1"  # used when no key is configured: namespaced, not secret

TenantSource = Literal["credential", "trusted_header"]


@dataclass(frozen=True, slots=True)
class Tenancy:
    """Resolves a request's tenant label from its headers (lower-case names). Immutable; built per config."""

    source: TenantSource
    credential_headers: tuple[str, ...]
    trusted_header: str
    allow_anonymous: bool
    key: bytes
    keyed: bool

    @classmethod
    def create(cls, source: TenantSource, credential_headers: tuple[str, ...], trusted_header: str,
               allow_anonymous: bool, key_env: str = DEFAULT_KEY_ENV,
               environ: Mapping[str, str] | None = None) -> Tenancy:
        """Read the hash key from `environ[key_env]` (default: os.environ); an empty or unset variable means
        unkeyed (see the module docstring)."""
        env = os.environ if environ is None else environ
        secret = env.get(key_env, "") if key_env else ""
        return cls(source=source, credential_headers=tuple(h.lower() for h in credential_headers),
                   trusted_header=trusted_header.lower(), allow_anonymous=allow_anonymous,
                   key=secret.encode() if secret else _UNKEYED, keyed=bool(secret))

    def tenant(self, headers: Mapping[str, str]) -> str | None:
        """The tenant label, `anonymous`, or None (no tenant and anonymous not allowed)."""
        label = self._credential(headers) if self.source == "credential" else self._trusted(headers)
        if label is not None:
            return label
        return ANONYMOUS if self.allow_anonymous else None

    def _credential(self, headers: Mapping[str, str]) -> str | None:
        for name in self.credential_headers:
            value = headers.get(name, "").strip()
            if value:
                digest = hmac.new(self.key, name.encode() + b"\0" + value.encode("utf-8", "surrogatepass"),
                                  hashlib.sha256).hexdigest()
                return "c:" + digest[:32]
        return None

    def _trusted(self, headers: Mapping[str, str]) -> str | None:
        value = headers.get(self.trusted_header, "").strip()
        if not value:
            return None
        if _PLAIN.match(value):
            return "t:" + value
        return "t:h:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
