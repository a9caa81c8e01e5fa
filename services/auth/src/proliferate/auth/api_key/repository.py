from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.auth.models import ApiKey
from proliferate.kit.db import for_organization
from sqlalchemy.ext.asyncio import AsyncSession


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(
        self,
        *,
        organization_id: uuid.UUID,
        user_id: uuid.UUID,
        name: str,
        prefix: str,
        secret_hash: bytes,
        start: str,
        expires_at: datetime | None,
    ) -> ApiKey:
        key = ApiKey(
            organization_id=organization_id,
            user_id=user_id,
            name=name,
            prefix=prefix,
            secret_hash=secret_hash,
            start=start,
            expires_at=expires_at,
        )
        self.session.add(key)
        await self.session.flush()
        return key

    async def count_active(self, organization_id: uuid.UUID, user_id: uuid.UUID, now: datetime) -> int:
        stmt = for_organization(
            sa.select(sa.func.count())
            .select_from(ApiKey)
            .where(
                ApiKey.user_id == user_id,
                ApiKey.revoked_at.is_(None),
                sa.or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
            ),
            ApiKey.organization_id,
            organization_id,
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def get_by_prefix(self, prefix: str) -> ApiKey | None:
        """The key a presented credential names (its prefix is public; the secret is checked after)."""
        return (await self.session.scalars(sa.select(ApiKey).where(ApiKey.prefix == prefix))).first()

    async def get(self, organization_id: uuid.UUID, api_key_id: uuid.UUID) -> ApiKey | None:
        stmt = for_organization(
            sa.select(ApiKey).where(ApiKey.id == api_key_id), ApiKey.organization_id, organization_id
        )
        return (await self.session.scalars(stmt.execution_options(populate_existing=True))).first()

    async def list_for_organization(
        self, organization_id: uuid.UUID, user_id: uuid.UUID | None
    ) -> list[ApiKey]:
        stmt = sa.select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        if user_id is not None:
            stmt = stmt.where(ApiKey.user_id == user_id)
        return list(
            (
                await self.session.scalars(for_organization(stmt, ApiKey.organization_id, organization_id))
            ).all()
        )

    async def revoke(self, organization_id: uuid.UUID, api_key_id: uuid.UUID, now: datetime) -> bool:
        result = await self.session.execute(
            sa.update(ApiKey)
            .where(
                ApiKey.id == api_key_id,
                ApiKey.organization_id == organization_id,
                ApiKey.revoked_at.is_(None),
            )
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def touch(self, api_key_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            sa.update(ApiKey)
            .where(ApiKey.id == api_key_id)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
