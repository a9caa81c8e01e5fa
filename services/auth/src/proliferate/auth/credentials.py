"""Opaque credentials: random tokens shown once, stored only as SHA-256 hashes.

Sign-in tokens, invitation/verification/reset link tokens and API-key secrets carry 32 random
bytes, so a fast hash is enough (no offline guessing); passwords use argon2id instead
(`sign_in/passwords.py`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

TOKEN_BYTES = 32
API_KEY_PREFIX = "plf_"
_BASE32_LOWER = "abcdefghijklmnopqrstuvwxyz234567"


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def same_hash(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def new_api_key() -> tuple[str, str, str]:
    """(key, prefix, secret): `plf_<12 base32 chars>_<base64url of 32 bytes>`."""
    prefix = "".join(secrets.choice(_BASE32_LOWER) for _ in range(12))
    secret = base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).rstrip(b"=").decode()
    return f"{API_KEY_PREFIX}{prefix}_{secret}", prefix, secret


def split_api_key(key: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    prefix, sep, secret = key[len(API_KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != 12 or not secret or len(secret) > 64:
        return None
    return prefix, secret
