from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from proliferate.auth.models import RateLimitBucket
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession


class RateLimitRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def hit(self, key: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
        """Count one hit in `key`'s window (a new window if the last one ended); atomic across
        replicas. Returns (count in the window, window start)."""
        expired = RateLimitBucket.window_start <= now - window
        stmt = (
            pg_insert(RateLimitBucket)
            .values(key=key, window_start=now, count=1)
            .on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "count": sa.case((expired, 1), else_=RateLimitBucket.count + 1),
                    "window_start": sa.case((expired, now), else_=RateLimitBucket.window_start),
                },
            )
            .returning(RateLimitBucket.count, RateLimitBucket.window_start)
        )
        row = (await self.session.execute(stmt)).one()
        return int(row[0]), row[1]

    async def peek(self, key: str, now: datetime, window: timedelta) -> tuple[int, datetime] | None:
        row = (
            await self.session.execute(
                sa.select(RateLimitBucket.count, RateLimitBucket.window_start).where(
                    RateLimitBucket.key == key, RateLimitBucket.window_start > now - window
                )
            )
        ).first()
        return (int(row[0]), row[1]) if row else None

    async def purge_older_than(self, before: datetime) -> int:
        result = await self.session.execute(
            sa.delete(RateLimitBucket).where(RateLimitBucket.window_start < before)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
