"""Signing keys of access and sandbox tokens (`AUTH_SIGNING_KEYS`, auth.md §4.4).

`[{"kid": "...", "private_key": "<PEM>"}]`: the first key signs, all verify and all are in the
JWKS, so a key can be rotated in (second, then first) and out (removed) without refusing a
token that is still valid.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import OKPKey
from proliferate.kit.logs import register_secret

ALGORITHM = "Ed25519"  # the fully specified name of EdDSA over Ed25519 (RFC 9864)
ISSUER = "proliferate-auth"
AUDIENCE = "gateway"


class SigningKeyError(ValueError):
    pass


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: OKPKey


class SigningKeys:
    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise SigningKeyError("at least one signing key is needed")
        self.keys = keys

    @classmethod
    def from_setting(cls, value: str) -> SigningKeys:
        try:
            items = json.loads(value)
            keys = [SigningKey(str(item["kid"]), OKPKey.import_key(item["private_key"])) for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise SigningKeyError('expected a JSON list of {"kid", "private_key" (Ed25519 PEM)}') from exc
        for item in items:
            register_secret(str(item["private_key"]).strip())
        for signing_key in keys:
            if signing_key.key.as_dict(private=False).get("crv") != "Ed25519":
                raise SigningKeyError(f"key {signing_key.kid} is not an Ed25519 key")
        return cls(keys)

    @staticmethod
    def generate_setting(kid: str | None = None) -> str:
        key = OKPKey.generate_key("Ed25519")
        pem = key.as_pem(private=True).decode()
        return json.dumps([{"kid": kid or f"k{secrets.token_hex(4)}", "private_key": pem}])

    def sign(self, claims: dict[str, Any]) -> str:
        current = self.keys[0]
        return jwt.encode({"alg": ALGORITHM, "kid": current.kid}, claims, current.key, algorithms=[ALGORITHM])

    def jwks(self) -> list[dict[str, str]]:
        out = []
        for signing_key in self.keys:
            public = signing_key.key.as_dict(private=False)
            out.append(
                {
                    "kid": signing_key.kid,
                    "kty": str(public["kty"]),
                    "crv": str(public["crv"]),
                    "x": str(public["x"]),
                    "alg": ALGORITHM,
                    "use": "sig",
                }
            )
        return out
