"""The edge's view of keys: an in-process LRU of SHA-256 → key, positive and negative, 2 s TTL.

Revocation, expiry and budget changes reach every replica within the TTL. A key in use is
reloaded in the background once half its TTL has passed, so its requests never wait for the
database (all streams of a session share one key: one blocking reload would stall them all).

Spend this replica has priced but not yet committed is held in `pending` so a budget check sees
it at once (a stream's cost is known when its usage arrives, before its last byte leaves).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from proliferate.kit.db import Database
from proliferate.kit.logs import get_logger, redact
from proliferate.llm_proxy.virtual_key.repository import VirtualKeyRepository
from proliferate.llm_proxy.virtual_key.secret import KEY_PREFIX, hash_key

log = get_logger("proliferate.llm_proxy.key_cache")


@dataclass
class KeyGrant:
    id: uuid.UUID
    organization_id: uuid.UUID
    session_id: uuid.UUID | None
    run_id: uuid.UUID | None
    key_prefix: str
    status: str
    expires_at: float  # epoch seconds
    max_budget_micros: int | None
    spend_micros: int
    allowed_models: frozenset[str] | None

    def usable(self, now: float) -> bool:
        return self.status == "active" and self.expires_at > now


class KeyCache:
    def __init__(
        self,
        db: Database,
        *,
        ttl_s: float = 2.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[bytes, tuple[float, KeyGrant | None]] = OrderedDict()
        self._loading: dict[bytes, asyncio.Future[KeyGrant | None]] = {}
        self._refreshing: set[asyncio.Task[KeyGrant | None]] = set()
        self.pending: dict[uuid.UUID, int] = {}

    async def lookup(self, key: str) -> KeyGrant | None:
        """The usable key `key` names, or None (missing, unknown, revoked or expired: one answer)."""
        if not key.startswith(KEY_PREFIX):
            return None
        digest = hash_key(key)
        entry = self._entries.get(digest)
        now = self.clock()
        if entry is not None and entry[0] > now:
            self._entries.move_to_end(digest)
            grant = entry[1]
            if entry[0] - now < self.ttl_s / 2 and digest not in self._loading:
                self._refresh(digest)
        else:
            grant = await self._load(digest)
        return grant if grant is not None and grant.usable(time.time()) else None

    async def _load(self, digest: bytes) -> KeyGrant | None:
        # One database read per key however many requests arrive while it is cold.
        loading = self._loading.get(digest)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[KeyGrant | None] = asyncio.get_running_loop().create_future()
        self._loading[digest] = future
        try:
            async with self.db.unit_of_work() as session:
                row = await VirtualKeyRepository(session).find_by_hash(digest)
            grant = _grant(row) if row is not None else None
            self._store(digest, grant)
            future.set_result(grant)
            return grant
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs "never retrieved"
            raise
        finally:
            del self._loading[digest]

    def _refresh(self, digest: bytes) -> None:
        task = asyncio.ensure_future(self._load(digest))
        self._refreshing.add(task)
        task.add_done_callback(self._refreshed)

    def _refreshed(self, task: asyncio.Task[KeyGrant | None]) -> None:
        self._refreshing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The entry still expires on time; the next request then loads it itself.
            log.warning("key_refresh_failed", error=redact(str(task.exception()))[:300])

    def _store(self, digest: bytes, grant: KeyGrant | None) -> None:
        self._entries[digest] = (self.clock() + self.ttl_s, grant)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def spend_of(self, grant: KeyGrant) -> int:
        return grant.spend_micros + self.pending.get(grant.id, 0)

    def add_pending(self, key_id: uuid.UUID, cost_micros: int) -> None:
        if cost_micros:
            self.pending[key_id] = self.pending.get(key_id, 0) + cost_micros

    def settle(self, grant: KeyGrant, cost_micros: int, spend_after: int | None) -> None:
        """A priced request committed: move its cost from pending into the key's spend."""
        if cost_micros:
            left = self.pending.get(grant.id, 0) - cost_micros
            if left > 0:
                self.pending[grant.id] = left
            else:
                self.pending.pop(grant.id, None)
        if spend_after is not None:
            grant.spend_micros = max(grant.spend_micros, spend_after)

    def forget(self, key: str) -> None:
        self._entries.pop(hash_key(key), None)


def _grant(row: object) -> KeyGrant:
    allowed = getattr(row, "allowed_models", None)
    return KeyGrant(
        id=row.id,  # type: ignore[attr-defined]
        organization_id=row.organization_id,  # type: ignore[attr-defined]
        session_id=row.session_id,  # type: ignore[attr-defined]
        run_id=row.run_id,  # type: ignore[attr-defined]
        key_prefix=row.key_prefix,  # type: ignore[attr-defined]
        status=row.status,  # type: ignore[attr-defined]
        expires_at=row.expires_at.timestamp(),  # type: ignore[attr-defined]
        max_budget_micros=row.max_budget_micros,  # type: ignore[attr-defined]
        spend_micros=row.spend_micros,  # type: ignore[attr-defined]
        allowed_models=frozenset(allowed) if allowed else None,
    )
