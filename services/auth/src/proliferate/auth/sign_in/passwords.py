"""Password hashing: argon2id (argon2-cffi), run in a thread so the event loop keeps serving.

Unknown emails are verified against a dummy hash made with the same parameters, so a wrong
password and an unknown email cost the same time (auth.md §5.2).
"""

from __future__ import annotations

import asyncio
import secrets

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class PasswordHasher:
    def __init__(self, *, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=argon2.Type.ID
        )
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        self.verifications = 0  # how many hashes were checked (dummy ones too)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """True only for a stored hash that matches; None still costs one verification."""
        self.verifications += 1
        try:
            matched: bool = await asyncio.to_thread(self._hasher.verify, stored or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            matched = False
        return bool(matched) and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)
