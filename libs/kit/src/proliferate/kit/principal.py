"""The verified caller every service sees (`auth.md` §4.1 `Principal`).

The gateway authenticates a person or API key once and forwards the resulting principal,
unchanged, inside the service credential of each gRPC call it makes; services never parse
cookies or keys themselves.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class PrincipalKind(StrEnum):
    USER = "user"
    API_KEY = "api_key"
    SERVICE = "service"
    SANDBOX = "sandbox"


class Principal(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    kind: PrincipalKind
    user_id: str = ""
    organization_id: str = ""
    role: str = ""
    credential_id: str = ""
    impersonator_user_id: str = ""
    email: str = ""
    is_super_admin: bool = False
    service_name: str = ""
    session_id: str = ""

    def to_claim(self) -> dict[str, object]:
        claim: dict[str, object] = msgspec.to_builtins(self)
        return claim

    @classmethod
    def from_claim(cls, claim: object) -> Principal:
        return msgspec.convert(claim, cls)
