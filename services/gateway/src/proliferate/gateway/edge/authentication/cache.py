"""The short cache of authenticated principals (≤ 30 s), keyed by SHA-256 of the credential.

Entries are indexed by credential id (sign-in or API key) and by user (the acting user and the
impersonator), so an auth event drops exactly the principals it concerns. A lookup that was in
flight while anything was dropped is not stored: it may predate the revocation.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from proliferate.kit.principal import Principal


@dataclass
class _Entry:
    principal: Principal
    expires_at: float


class PrincipalCache:
    def __init__(
        self,
        ttl_seconds: float = 30.0,
        max_entries: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self.generation = 0  # +1 on every drop
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._by_credential: dict[str, set[bytes]] = {}
        self._by_user: dict[str, set[bytes]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> Principal | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self.clock():
            self._remove(key)
            return None
        return entry.principal

    def put(self, key: bytes, principal: Principal, generation: int) -> None:
        """Store unless something was dropped since `generation` was read (before the lookup)."""
        if self.ttl <= 0 or generation != self.generation:
            return
        self._remove(key)
        while len(self._entries) >= self.max_entries:
            self._remove(next(iter(self._entries)))
        self._entries[key] = _Entry(principal, self.clock() + self.ttl)
        self._index(self._by_credential, principal.credential_id, key)
        for user in {principal.user_id, principal.impersonator_user_id}:
            self._index(self._by_user, user, key)

    def drop_credential(self, credential_id: str) -> int:
        return self._drop(self._by_credential.pop(credential_id, set()))

    def drop_user(self, user_id: str) -> int:
        return self._drop(self._by_user.pop(user_id, set()))

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._by_credential.clear()
        self._by_user.clear()

    def _drop(self, keys: set[bytes]) -> int:
        self.generation += 1
        for key in keys:
            self._remove(key)
        return len(keys)

    @staticmethod
    def _index(index: dict[str, set[bytes]], value: str, key: bytes) -> None:
        if value:
            index.setdefault(value, set()).add(key)

    def _remove(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        principal = entry.principal
        for index, value in (
            (self._by_credential, principal.credential_id),
            (self._by_user, principal.user_id),
            (self._by_user, principal.impersonator_user_id),
        ):
            keys = index.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[value]
