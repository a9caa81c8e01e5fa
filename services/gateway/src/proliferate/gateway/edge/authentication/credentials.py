"""Finding the credential of a request: `Authorization: Bearer …` first, then the sign-in
cookie (auth.md §4.4: with both, the header wins)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from litestar import Request
from proliferate.kit.errors import Unauthenticated

SIGN_IN_COOKIE = "proliferate_signin"
ORG_HEADER = "x-org-id"
API_KEY_PREFIX = "plf_"


class CredentialKind(StrEnum):
    SIGN_IN = "sign_in"
    API_KEY = "api_key"
    ACCESS_TOKEN = "access_token"  # noqa: S105 - a kind, not a token


class Source(StrEnum):
    HEADER = "header"
    COOKIE = "cookie"


@dataclass(frozen=True)
class Credential:
    kind: CredentialKind
    value: str
    source: Source

    def cache_key(self, requested_organization_id: str) -> bytes:
        """SHA-256 of the credential (and the organization asked for): the secret is never a key."""
        material = f"{self.kind}\x00{self.value}\x00{requested_organization_id}"
        return hashlib.sha256(material.encode("utf-8", "surrogatepass")).digest()


def looks_like_jwt(value: str) -> bool:
    return value.startswith("eyJ") and value.count(".") == 2


def credential_of(request: Request[Any, Any, Any]) -> Credential | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value or len(value) > 4096:
            raise Unauthenticated("use the header `Authorization: Bearer <token>`")
        if value.startswith(API_KEY_PREFIX):
            return Credential(CredentialKind.API_KEY, value, Source.HEADER)
        if looks_like_jwt(value):
            return Credential(CredentialKind.ACCESS_TOKEN, value, Source.HEADER)
        return Credential(CredentialKind.SIGN_IN, value, Source.HEADER)
    cookie = request.cookies.get(SIGN_IN_COOKIE)
    if cookie:
        return Credential(CredentialKind.SIGN_IN, cookie[:4096], Source.COOKIE)
    return None
