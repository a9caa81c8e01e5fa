from __future__ import annotations

import uuid
from typing import Any, cast

import sqlalchemy as sa
from proliferate.auth.models import Member, Organization, User
from proliferate.kit.db import for_organization
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

_LIVE_ORG = sa.exists().where(Organization.id == Member.organization_id, Organization.deleted_at.is_(None))


class MemberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, organization_id: uuid.UUID, user_id: uuid.UUID, role: str) -> Member | None:
        """The new member, or None when the user already is one."""
        stmt = (
            pg_insert(Member)
            .values(organization_id=organization_id, user_id=user_id, role=role)
            .on_conflict_do_nothing(index_elements=["organization_id", "user_id"])
            .returning(Member)
        )
        return (await self.session.scalars(stmt)).first()

    async def role_of(self, organization_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
        """The user's role in a live organization, None when not a member."""
        stmt = for_organization(
            sa.select(Member.role).where(Member.user_id == user_id, _LIVE_ORG),
            Member.organization_id,
            organization_id,
        )
        return (await self.session.scalars(stmt)).first()

    async def get(self, organization_id: uuid.UUID, member_id: uuid.UUID) -> Member | None:
        stmt = for_organization(
            sa.select(Member).where(Member.id == member_id), Member.organization_id, organization_id
        )
        return (await self.session.scalars(stmt)).first()

    async def get_by_user(self, organization_id: uuid.UUID, user_id: uuid.UUID) -> Member | None:
        stmt = for_organization(
            sa.select(Member).where(Member.user_id == user_id), Member.organization_id, organization_id
        )
        return (await self.session.scalars(stmt)).first()

    async def first_membership(self, user_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
        """The user's first organization (by joining time, then id): the deterministic fallback."""
        row = (
            await self.session.execute(
                sa.select(Member.organization_id, Member.role)
                .where(Member.user_id == user_id, _LIVE_ORG)
                .order_by(Member.created_at, Member.organization_id)
                .limit(1)
            )
        ).first()
        return (row.organization_id, row.role) if row else None

    async def list_with_users(self, organization_id: uuid.UUID) -> list[tuple[Member, User]]:
        query = cast(sa.Select[Any], sa.select(Member, User).join(User, User.id == Member.user_id))
        stmt = for_organization(
            query.order_by(Member.created_at, Member.id), Member.organization_id, organization_id
        )
        return [(m, u) for m, u in (await self.session.execute(stmt)).all()]

    async def count_owners(self, organization_id: uuid.UUID) -> int:
        stmt = for_organization(
            sa.select(sa.func.count()).select_from(Member).where(Member.role == "owner"),
            Member.organization_id,
            organization_id,
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def set_role(self, organization_id: uuid.UUID, member_id: uuid.UUID, role: str) -> None:
        await self.session.execute(
            sa.update(Member)
            .where(Member.id == member_id, Member.organization_id == organization_id)
            .values(role=role)
            .execution_options(synchronize_session=False)
        )

    async def delete(self, organization_id: uuid.UUID, member_id: uuid.UUID) -> None:
        await self.session.execute(
            sa.delete(Member)
            .where(Member.id == member_id, Member.organization_id == organization_id)
            .execution_options(synchronize_session=False)
        )
