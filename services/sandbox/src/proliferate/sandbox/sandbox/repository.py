"""Every SQL statement on `sandboxes`. Transitions are conditional updates (§3.1)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from proliferate.kit.db import for_organization
from proliferate.sandbox.models import Sandbox
from proliferate.sandbox.models.sandbox import LIVE_STATUSES
from sqlalchemy.ext.asyncio import AsyncSession


class SandboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- reads --------------------------------------------------------------------------

    async def get(self, organization_id: uuid.UUID, sandbox_id: uuid.UUID) -> Sandbox | None:
        stmt = for_organization(sa.select(Sandbox), Sandbox.organization_id, organization_id).where(
            Sandbox.id == sandbox_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_unscoped(self, sandbox_id: uuid.UUID, *, for_update: bool = False) -> Sandbox | None:
        """Internal use only (jobs, base builds, the continuation of a scoped call)."""
        stmt = sa.select(Sandbox).where(Sandbox.id == sandbox_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def refresh(self, row: Sandbox) -> Sandbox:
        await self.session.refresh(row)
        return row

    async def live_for_session(
        self, organization_id: uuid.UUID, session_id: uuid.UUID, *, for_update: bool = False
    ) -> Sandbox | None:
        stmt = for_organization(sa.select(Sandbox), Sandbox.organization_id, organization_id).where(
            Sandbox.session_id == session_id, Sandbox.status.in_(LIVE_STATUSES)
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def latest_for_session(self, organization_id: uuid.UUID, session_id: uuid.UUID) -> Sandbox | None:
        stmt = (
            for_organization(sa.select(Sandbox), Sandbox.organization_id, organization_id)
            .where(Sandbox.session_id == session_id)
            .order_by(Sandbox.created_at.desc(), Sandbox.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def session_of_other_org(self, organization_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        """True when the session's sandboxes belong to another organization (cross-org probe)."""
        stmt = sa.select(sa.func.count()).where(
            Sandbox.session_id == session_id, Sandbox.organization_id != organization_id
        )
        return bool((await self.session.execute(stmt)).scalar_one())

    async def list_for_organization(
        self,
        organization_id: uuid.UUID,
        *,
        statuses: Sequence[str],
        session_id: uuid.UUID | None,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[Sandbox]:
        stmt = for_organization(sa.select(Sandbox), Sandbox.organization_id, organization_id)
        if statuses:
            stmt = stmt.where(Sandbox.status.in_(list(statuses)))
        if session_id is not None:
            stmt = stmt.where(Sandbox.session_id == session_id)
        if after is not None:
            stmt = stmt.where(sa.tuple_(Sandbox.created_at, Sandbox.id) < sa.tuple_(after[0], after[1]))
        stmt = stmt.order_by(Sandbox.created_at.desc(), Sandbox.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def in_organization(self, organization_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[Sandbox]:
        stmt = for_organization(sa.select(Sandbox), Sandbox.organization_id, organization_id).where(
            Sandbox.id.in_(list(ids))
        )
        return list((await self.session.execute(stmt)).scalars())

    async def for_organization_live(self, organization_id: uuid.UUID) -> list[Sandbox]:
        stmt = for_organization(sa.select(Sandbox), Sandbox.organization_id, organization_id).where(
            Sandbox.status.in_((*LIVE_STATUSES, "terminating"))
        )
        return list((await self.session.execute(stmt)).scalars())

    async def live_with_provider(self, provider: str) -> list[Sandbox]:
        stmt = sa.select(Sandbox).where(
            Sandbox.provider == provider,
            Sandbox.status.in_(("booting", "ready", "paused")),
            Sandbox.provider_sandbox_id.is_not(None),
        )
        return list((await self.session.execute(stmt)).scalars())

    async def live_ids(self, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of `ids` have a row that is not terminal (the orphan sweep keeps those)."""
        if not ids:
            return set()
        stmt = sa.select(Sandbox.id).where(
            Sandbox.id.in_(list(ids)), Sandbox.status.not_in(("terminated", "failed"))
        )
        return set((await self.session.execute(stmt)).scalars())

    async def expired(self, now: datetime, limit: int = 100) -> list[Sandbox]:
        stmt = (
            sa.select(Sandbox)
            .where(Sandbox.status.in_(("ready", "paused")), Sandbox.expires_at <= now)
            .order_by(Sandbox.expires_at)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def stuck_terminating(self, older_than: datetime, limit: int = 100) -> list[Sandbox]:
        stmt = (
            sa.select(Sandbox)
            .where(Sandbox.status == "terminating", Sandbox.updated_at <= older_than)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def abandoned_boots(self, now: datetime, limit: int = 100) -> list[Sandbox]:
        stmt = (
            sa.select(Sandbox)
            .where(
                Sandbox.status.in_(("provisioning", "booting")),
                sa.or_(Sandbox.op_expires_at.is_(None), Sandbox.op_expires_at < now),
            )
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def deferred_terminations(self, now: datetime, limit: int = 100) -> list[Sandbox]:
        stmt = (
            sa.select(Sandbox)
            .where(
                Sandbox.terminate_requested_at.is_not(None),
                Sandbox.status.in_(("ready", "paused", "booting")),
                sa.or_(Sandbox.op_id.is_(None), Sandbox.op_expires_at < now),
            )
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def meterable(self, limit: int = 500) -> list[Sandbox]:
        stmt = (
            sa.select(Sandbox)
            .where(
                Sandbox.status.in_(("booting", "ready")),
                Sandbox.metered_through_at.is_not(None),
                Sandbox.purpose == "session",
            )
            .with_for_update(skip_locked=True)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def count_live_on_host(self, provider: str, host_id: str) -> int:
        stmt = sa.select(sa.func.count()).where(
            Sandbox.provider == provider,
            Sandbox.host_id == host_id,
            Sandbox.status.not_in(("terminated", "failed")),
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def used_port_bases(self, host_id: str) -> set[int]:
        stmt = sa.select(Sandbox.port_base).where(
            Sandbox.host_id == host_id,
            Sandbox.port_base.is_not(None),
            Sandbox.status.not_in(("terminated", "failed")),
        )
        return {int(p) for p in (await self.session.execute(stmt)).scalars() if p is not None}

    async def lock_host(self, host_id: str) -> None:
        """Serialize capacity checks and port allocation of one host (transaction-scoped)."""
        await self.session.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"sandbox-host:{host_id}", 0)))
        )

    # --- writes -------------------------------------------------------------------------

    async def insert(self, **values: Any) -> Sandbox:
        row = Sandbox(**values)
        self.session.add(row)
        await self.session.flush()
        return row

    async def update_where(
        self, sandbox_id: uuid.UUID, *conditions: sa.ColumnElement[bool], **values: Any
    ) -> Sandbox | None:
        """`UPDATE … WHERE id = … AND <conditions>`; the row, or None when nothing matched."""
        values.setdefault("updated_at", sa.func.now())
        stmt = (
            sa.update(Sandbox)
            .where(Sandbox.id == sandbox_id, *conditions)
            .values(**values)
            .returning(Sandbox)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def transition(
        self, sandbox_id: uuid.UUID, from_statuses: Sequence[str], to_status: str, **values: Any
    ) -> Sandbox | None:
        return await self.update_where(
            sandbox_id, Sandbox.status.in_(list(from_statuses)), status=to_status, **values
        )

    async def acquire_lease(
        self, sandbox_id: uuid.UUID, kind: str, op_id: uuid.UUID, seconds: float, now: datetime
    ) -> Sandbox | None:
        return await self.update_where(
            sandbox_id,
            sa.or_(Sandbox.op_id.is_(None), Sandbox.op_expires_at < now),
            op_kind=kind,
            op_id=op_id,
            op_expires_at=now + timedelta(seconds=seconds),
        )

    async def release_lease(self, sandbox_id: uuid.UUID, op_id: uuid.UUID) -> Sandbox | None:
        return await self.update_where(
            sandbox_id, Sandbox.op_id == op_id, op_kind=None, op_id=None, op_expires_at=None
        )

    async def release_expired_leases(self, now: datetime) -> int:
        stmt = (
            sa.update(Sandbox)
            .where(
                Sandbox.op_id.is_not(None),
                Sandbox.op_expires_at < now,
                Sandbox.status.in_(("ready", "paused")),
            )
            .values(op_kind=None, op_id=None, op_expires_at=None, updated_at=sa.func.now())
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
