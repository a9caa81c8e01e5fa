from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from proliferate.auth.models import AdminAuditLog
from sqlalchemy.ext.asyncio import AsyncSession


class AdminAuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        *,
        actor_user_id: uuid.UUID,
        action: str,
        target_user_id: uuid.UUID | None,
        target_organization_id: uuid.UUID | None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        await self.session.execute(
            sa.insert(AdminAuditLog).values(
                actor_user_id=actor_user_id,
                action=action,
                target_user_id=target_user_id,
                target_organization_id=target_organization_id,
                metadata_=metadata or {},
            )
        )

    async def list_for_actor(self, actor_user_id: uuid.UUID) -> list[AdminAuditLog]:
        return list(
            (
                await self.session.scalars(
                    sa.select(AdminAuditLog)
                    .where(AdminAuditLog.actor_user_id == actor_user_id)
                    .order_by(AdminAuditLog.created_at, AdminAuditLog.id)
                )
            ).all()
        )
