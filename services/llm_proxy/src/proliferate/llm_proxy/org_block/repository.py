"""Every SQL statement on `org_blocks`."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.llm_proxy.models import OrgBlock
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession


class OrgBlockRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, organization_id: uuid.UUID, *, blocked: bool, reason: str, at: datetime) -> bool:
        """Apply a pause or resume only if it is not older than the last one applied."""
        insert = pg_insert(OrgBlock).values(
            organization_id=organization_id, reason=reason, blocked=blocked, blocked_at=at, last_event_at=at
        )
        stmt = insert.on_conflict_do_update(
            index_elements=[OrgBlock.organization_id],
            set_={
                "reason": insert.excluded.reason,
                "blocked": insert.excluded.blocked,
                "blocked_at": sa.case(
                    (insert.excluded.blocked, insert.excluded.blocked_at), else_=OrgBlock.blocked_at
                ),
                "last_event_at": insert.excluded.last_event_at,
            },
            where=OrgBlock.last_event_at <= insert.excluded.last_event_at,
        ).returning(OrgBlock.organization_id)
        return (await self.session.execute(stmt)).first() is not None

    async def blocked_organizations(self) -> set[uuid.UUID]:
        rows = await self.session.execute(sa.select(OrgBlock.organization_id).where(OrgBlock.blocked))
        return set(rows.scalars())
