"""Business rules of org blocks: order-safe projection of billing's pause/resume, and the edge's set."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

from proliferate.kit.db import Database
from proliferate.kit.logs import get_logger, redact
from proliferate.llm_proxy.org_block.repository import OrgBlockRepository
from sqlalchemy.ext.asyncio import AsyncSession

log = get_logger("proliferate.llm_proxy.org_block")


async def apply_paused(session: AsyncSession, organization_id: uuid.UUID, reason: str, at: datetime) -> bool:
    return await OrgBlockRepository(session).record(
        organization_id, blocked=True, reason=reason or "paused", at=at
    )


async def apply_resumed(session: AsyncSession, organization_id: uuid.UUID, at: datetime) -> bool:
    return await OrgBlockRepository(session).record(organization_id, blocked=False, reason="resumed", at=at)


class OrgBlockSet:
    """The blocked orgs as this replica sees them, refreshed from the table every `refresh_s`."""

    def __init__(self, db: Database, refresh_s: float = 2.0) -> None:
        self.db = db
        self.refresh_s = refresh_s
        self.blocked: frozenset[uuid.UUID] = frozenset()
        self.loaded = False
        self._task: asyncio.Task[None] | None = None

    def __contains__(self, organization_id: uuid.UUID) -> bool:
        return organization_id in self.blocked

    async def refresh(self) -> None:
        async with self.db.unit_of_work() as session:
            self.blocked = frozenset(await OrgBlockRepository(session).blocked_organizations())
        self.loaded = True

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # keep the last known set; say so
                log.warning("org_blocks_refresh_failed", error=redact(str(exc))[:300])
            await asyncio.sleep(self.refresh_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="org-blocks-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def event_time(stamp_seconds: int, stamp_nanos: int, fallback: datetime | None) -> datetime:
    """The event's own time (payload), else the publish time, else now."""
    if stamp_seconds or stamp_nanos:
        return datetime.fromtimestamp(stamp_seconds + stamp_nanos / 1e9, UTC)
    return fallback or datetime.now(UTC)
