from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from proliferate.auth.models import Member, Organization
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

_LIVE = Organization.deleted_at.is_(None)


class OrganizationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(
        self,
        *,
        name: str,
        slug: str,
        created_by: uuid.UUID | None,
        personal_owner_user_id: uuid.UUID | None = None,
    ) -> Organization | None:
        """The new organization, or None when the slug is taken."""
        stmt = (
            pg_insert(Organization)
            .values(
                name=name,
                slug=slug,
                is_personal=personal_owner_user_id is not None,
                personal_owner_user_id=personal_owner_user_id,
                created_by=created_by,
            )
            .on_conflict_do_nothing(index_elements=["slug"])
            .returning(Organization)
        )
        return (await self.session.scalars(stmt)).first()

    async def get(self, organization_id: uuid.UUID) -> Organization | None:
        return (
            await self.session.scalars(
                sa.select(Organization).where(Organization.id == organization_id, _LIVE)
            )
        ).first()

    async def get_for_update(self, organization_id: uuid.UUID) -> Organization | None:
        """The organization row, locked: membership changes of one org are serialized on it."""
        return (
            await self.session.scalars(
                sa.select(Organization)
                .where(Organization.id == organization_id, _LIVE)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).first()

    async def get_with_role(
        self, organization_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[Organization, str] | None:
        row = (
            await self.session.execute(
                sa.select(Organization, Member.role)
                .join(Member, Member.organization_id == Organization.id)
                .where(Organization.id == organization_id, Member.user_id == user_id, _LIVE)
            )
        ).first()
        return (row[0], row[1]) if row else None

    async def list_for_user(self, user_id: uuid.UUID) -> list[tuple[Organization, str]]:
        rows = await self.session.execute(
            sa.select(Organization, Member.role)
            .join(Member, Member.organization_id == Organization.id)
            .where(Member.user_id == user_id, _LIVE)
            .order_by(Member.created_at, Member.organization_id)
        )
        return [(org, role) for org, role in rows.all()]

    async def any_completed_for_user(self, user_id: uuid.UUID) -> bool:
        row = (
            await self.session.execute(
                sa.select(sa.literal(1))
                .select_from(Organization)
                .join(Member, Member.organization_id == Organization.id)
                .where(Member.user_id == user_id, _LIVE, Organization.onboarding_status == "completed")
                .limit(1)
            )
        ).first()
        return row is not None

    async def update(self, organization_id: uuid.UUID, values: dict[str, Any]) -> Organization | None:
        """Apply `values`; None when another live organization already has the new slug."""
        stmt = (
            sa.update(Organization)
            .where(Organization.id == organization_id, _LIVE)
            .values(**values)
            .returning(Organization)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        if "slug" in values:
            async with self.session.begin_nested():
                try:
                    return (await self.session.scalars(stmt)).first()
                except sa.exc.IntegrityError:
                    return None
        return (await self.session.scalars(stmt)).first()

    async def merge_onboarding_meta(self, organization_id: uuid.UUID, meta: dict[str, Any]) -> None:
        await self.session.execute(
            sa.update(Organization)
            .where(Organization.id == organization_id)
            .values(
                onboarding_meta=Organization.onboarding_meta.op("||")(
                    sa.bindparam("meta", meta, type_=pg.JSONB)
                )
            )
        )

    async def set_checkout_pending(self, organization_id: uuid.UUID) -> None:
        await self.session.execute(
            sa.update(Organization)
            .where(Organization.id == organization_id, Organization.onboarding_status == "pending")
            .values(onboarding_status="checkout_pending")
        )

    async def complete_onboarding(self, organization_id: uuid.UUID, now: datetime) -> bool:
        """True for the one call that moved the organization to `completed`."""
        result = await self.session.execute(
            sa.update(Organization)
            .where(Organization.id == organization_id, Organization.onboarding_status != "completed", _LIVE)
            .values(onboarding_status="completed", onboarding_completed_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def search(self, q: str, after: uuid.UUID | None, limit: int) -> list[Organization]:
        stmt = sa.select(Organization).where(_LIVE).order_by(Organization.id).limit(limit)
        if after is not None:
            stmt = stmt.where(Organization.id > after)
        if q:
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            stmt = stmt.where(
                sa.or_(
                    Organization.name.ilike(pattern, escape="\\"),
                    Organization.slug.ilike(pattern, escape="\\"),
                )
            )
        return list((await self.session.scalars(stmt)).all())
