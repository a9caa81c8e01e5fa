from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.auth.models import Invitation, Organization, User
from proliferate.kit.db import for_organization
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

_PENDING = Invitation.status == "pending"


class InvitationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_pending(
        self,
        *,
        organization_id: uuid.UUID,
        email: str,
        email_normalized: str,
        role: str,
        token_hash: bytes,
        inviter_user_id: uuid.UUID,
        expires_at: datetime,
    ) -> Invitation | None:
        """The new invitation, or None when one is already pending for this email (the partial
        unique index decides between concurrent creations)."""
        stmt = (
            pg_insert(Invitation)
            .values(
                organization_id=organization_id,
                email=email,
                email_normalized=email_normalized,
                role=role,
                status="pending",
                token_hash=token_hash,
                inviter_user_id=inviter_user_id,
                expires_at=expires_at,
            )
            .on_conflict_do_nothing(
                index_elements=["organization_id", "email_normalized"], index_where=_PENDING
            )
            .returning(Invitation)
        )
        return (await self.session.scalars(stmt)).first()

    async def get_pending_for_email(
        self, organization_id: uuid.UUID, email_normalized: str
    ) -> Invitation | None:
        stmt = for_organization(
            sa.select(Invitation).where(Invitation.email_normalized == email_normalized, _PENDING),
            Invitation.organization_id,
            organization_id,
        )
        return (await self.session.scalars(stmt.with_for_update())).first()

    async def has_pending_for_email(self, email_normalized: str, now: datetime) -> bool:
        row = (
            await self.session.execute(
                sa.select(sa.literal(1)).where(
                    Invitation.email_normalized == email_normalized, _PENDING, Invitation.expires_at > now
                )
            )
        ).first()
        return row is not None

    async def get(self, organization_id: uuid.UUID, invitation_id: uuid.UUID) -> Invitation | None:
        stmt = for_organization(
            sa.select(Invitation).where(Invitation.id == invitation_id),
            Invitation.organization_id,
            organization_id,
        )
        return (await self.session.scalars(stmt.execution_options(populate_existing=True))).first()

    async def get_by_token_hash(self, token_hash: bytes) -> Invitation | None:
        return (
            await self.session.scalars(
                sa.select(Invitation)
                .where(Invitation.token_hash == token_hash)
                .execution_options(populate_existing=True)
            )
        ).first()

    async def get_by_id(self, invitation_id: uuid.UUID) -> Invitation | None:
        """For the mailer, which acts on its own service's event (not on a caller's behalf)."""
        return await self.session.get(Invitation, invitation_id)

    async def list_for_organization(self, organization_id: uuid.UUID) -> list[Invitation]:
        stmt = for_organization(
            sa.select(Invitation).order_by(Invitation.created_at.desc(), Invitation.id.desc()).limit(200),
            Invitation.organization_id,
            organization_id,
        )
        return list((await self.session.scalars(stmt)).all())

    async def transition(
        self,
        invitation_id: uuid.UUID,
        to: str,
        now: datetime,
        responded_by: uuid.UUID | None = None,
    ) -> Invitation | None:
        """pending → `to` while unexpired (guarded); None when the row was not pending any more."""
        stmt = (
            sa.update(Invitation)
            .where(Invitation.id == invitation_id, _PENDING, Invitation.expires_at > now)
            .values(status=to, responded_at=now, responded_by_user_id=responded_by)
            .returning(Invitation)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        return (await self.session.scalars(stmt)).first()

    async def expire(self, invitation_id: uuid.UUID, now: datetime) -> bool:
        """pending → expired, only once its time has passed."""
        result = await self.session.execute(
            sa.update(Invitation)
            .where(Invitation.id == invitation_id, _PENDING, Invitation.expires_at <= now)
            .values(status="expired")
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def extend(self, invitation_id: uuid.UUID, expires_at: datetime, token_hash: bytes) -> Invitation:
        stmt = (
            sa.update(Invitation)
            .where(Invitation.id == invitation_id)
            .values(expires_at=expires_at, token_hash=token_hash)
            .returning(Invitation)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        return (await self.session.scalars(stmt)).one()

    async def set_token_hash_if_pending(self, invitation_id: uuid.UUID, token_hash: bytes) -> bool:
        result = await self.session.execute(
            sa.update(Invitation)
            .where(Invitation.id == invitation_id, _PENDING)
            .values(token_hash=token_hash)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def preview(self, token_hash: bytes) -> tuple[Invitation, str, str | None] | None:
        """(invitation, organization name, inviter name) for a link token."""
        row = (
            await self.session.execute(
                sa.select(Invitation, Organization.name, User.name)
                .join(Organization, Organization.id == Invitation.organization_id)
                .outerjoin(User, User.id == Invitation.inviter_user_id)
                .where(Invitation.token_hash == token_hash, Organization.deleted_at.is_(None))
            )
        ).first()
        return (row[0], row[1], row[2]) if row else None

    async def claim_expired(self, now: datetime, limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Expire up to `limit` overdue pending invitations (replicas skip each other's rows)."""
        due = (
            sa.select(Invitation.id)
            .where(_PENDING, Invitation.expires_at <= now)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        rows = await self.session.execute(
            sa.update(Invitation)
            .where(Invitation.id.in_(due))
            .values(status="expired")
            .returning(Invitation.id, Invitation.organization_id)
            .execution_options(synchronize_session=False)
        )
        return [(r.id, r.organization_id) for r in rows]
