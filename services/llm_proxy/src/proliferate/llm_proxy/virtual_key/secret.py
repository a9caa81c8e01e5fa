"""The key itself: `sk-pvk-` + 43 base64url characters; stored only as SHA-256 and prefix."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "sk-pvk-"
PREFIX_LENGTH = 12
# Anything shaped like a key is redacted from every log line (kit.logs.register_pattern).
KEY_PATTERN = r"sk-pvk-[A-Za-z0-9_-]{8,}"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def prefix_of(key: str) -> str:
    return key[:PREFIX_LENGTH]
