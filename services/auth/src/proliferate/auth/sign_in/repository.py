from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.auth.models import SignIn
from sqlalchemy.ext.asyncio import AsyncSession


class SignInRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(
        self,
        *,
        user_id: uuid.UUID,
        token_hash: bytes,
        active_organization_id: uuid.UUID | None,
        ip: str | None,
        user_agent: str | None,
        now: datetime,
        expires_at: datetime,
    ) -> SignIn:
        sign_in = SignIn(
            user_id=user_id,
            token_hash=token_hash,
            active_organization_id=active_organization_id,
            ip=ip,
            user_agent=user_agent,
            last_seen_at=now,
            expires_at=expires_at,
        )
        self.session.add(sign_in)
        await self.session.flush()
        return sign_in

    async def get_active_by_hash(self, token_hash: bytes, now: datetime) -> SignIn | None:
        return (
            await self.session.scalars(
                sa.select(SignIn).where(
                    SignIn.token_hash == token_hash, SignIn.revoked_at.is_(None), SignIn.expires_at > now
                )
            )
        ).first()

    async def exists_with_hash(self, token_hash: bytes) -> bool:
        row = (
            await self.session.execute(sa.select(SignIn.id).where(SignIn.token_hash == token_hash))
        ).first()
        return row is not None

    async def get_active(self, sign_in_id: uuid.UUID, user_id: uuid.UUID, now: datetime) -> SignIn | None:
        return (
            await self.session.scalars(
                sa.select(SignIn).where(
                    SignIn.id == sign_in_id,
                    SignIn.user_id == user_id,
                    SignIn.revoked_at.is_(None),
                    SignIn.expires_at > now,
                )
            )
        ).first()

    async def touch(self, sign_in_id: uuid.UUID, now: datetime, expires_at: datetime | None) -> None:
        values: dict[str, datetime] = {"last_seen_at": now}
        if expires_at is not None:
            values["expires_at"] = expires_at
        await self.session.execute(
            sa.update(SignIn)
            .where(SignIn.id == sign_in_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def set_active_organization(self, sign_in_id: uuid.UUID, organization_id: uuid.UUID | None) -> None:
        await self.session.execute(
            sa.update(SignIn)
            .where(SignIn.id == sign_in_id)
            .values(active_organization_id=organization_id)
            .execution_options(synchronize_session=False)
        )

    async def revoke(self, sign_in_id: uuid.UUID, user_id: uuid.UUID, now: datetime) -> bool:
        result = await self.session.execute(
            sa.update(SignIn)
            .where(SignIn.id == sign_in_id, SignIn.user_id == user_id, SignIn.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def revoke_all_for_user(self, user_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
        rows = await self.session.execute(
            sa.update(SignIn)
            .where(SignIn.user_id == user_id, SignIn.revoked_at.is_(None), SignIn.expires_at > now)
            .values(revoked_at=now)
            .returning(SignIn.id)
            .execution_options(synchronize_session=False)
        )
        return [row.id for row in rows]

    async def last_active_organization(self, user_id: uuid.UUID) -> uuid.UUID | None:
        """The active organization of the user's most recent sign-in (a hint, re-checked)."""
        return (
            await self.session.scalars(
                sa.select(SignIn.active_organization_id)
                .where(SignIn.user_id == user_id, SignIn.active_organization_id.is_not(None))
                .order_by(SignIn.created_at.desc(), SignIn.id.desc())
                .limit(1)
            )
        ).first()

    async def set_overlay(
        self,
        sign_in_id: uuid.UUID,
        user_id: uuid.UUID | None,
        organization_id: uuid.UUID | None,
        expires_at: datetime | None,
    ) -> None:
        await self.session.execute(
            sa.update(SignIn)
            .where(SignIn.id == sign_in_id)
            .values(
                impersonated_user_id=user_id,
                impersonated_organization_id=organization_id,
                impersonation_expires_at=expires_at,
            )
            .execution_options(synchronize_session=False)
        )

    async def purge_expired_before(self, before: datetime) -> int:
        result = await self.session.execute(sa.delete(SignIn).where(SignIn.expires_at < before))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
