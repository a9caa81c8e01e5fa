"""Every SQL statement on `snapshot_artifacts`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from proliferate.kit.db import for_organization
from proliferate.sandbox.models import SnapshotArtifact
from sqlalchemy.ext.asyncio import AsyncSession


class ArtifactRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, organization_id: uuid.UUID, artifact_id: uuid.UUID) -> SnapshotArtifact | None:
        stmt = for_organization(
            sa.select(SnapshotArtifact), SnapshotArtifact.organization_id, organization_id
        ).where(SnapshotArtifact.id == artifact_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_unscoped(self, artifact_id: uuid.UUID) -> SnapshotArtifact | None:
        stmt = sa.select(SnapshotArtifact).where(SnapshotArtifact.id == artifact_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_idempotency_key(self, sandbox_id: uuid.UUID, key: str) -> SnapshotArtifact | None:
        stmt = sa.select(SnapshotArtifact).where(
            SnapshotArtifact.source_sandbox_id == sandbox_id, SnapshotArtifact.idempotency_key == key
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def newest_base(self, provider: str, namespace: str, version_key: str) -> SnapshotArtifact | None:
        stmt = (
            sa.select(SnapshotArtifact)
            .where(
                SnapshotArtifact.provider == provider,
                SnapshotArtifact.provider_namespace == namespace,
                SnapshotArtifact.kind == "base",
                SnapshotArtifact.version_key == version_key,
                SnapshotArtifact.status == "available",
            )
            .order_by(SnapshotArtifact.created_at.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def base_in_flight(
        self, provider: str, namespace: str, version_key: str
    ) -> SnapshotArtifact | None:
        stmt = sa.select(SnapshotArtifact).where(
            SnapshotArtifact.provider == provider,
            SnapshotArtifact.provider_namespace == namespace,
            SnapshotArtifact.kind == "base",
            SnapshotArtifact.version_key == version_key,
            SnapshotArtifact.status.in_(("creating", "available")),
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def insert(self, **values: Any) -> SnapshotArtifact:
        row = SnapshotArtifact(**values)
        self.session.add(row)
        await self.session.flush()
        return row

    async def update_where(
        self, artifact_id: uuid.UUID, *conditions: sa.ColumnElement[bool], **values: Any
    ) -> SnapshotArtifact | None:
        stmt = (
            sa.update(SnapshotArtifact)
            .where(SnapshotArtifact.id == artifact_id, *conditions)
            .values(**values)
            .returning(SnapshotArtifact)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def transition(
        self, artifact_id: uuid.UUID, from_statuses: Sequence[str], to_status: str, **values: Any
    ) -> SnapshotArtifact | None:
        return await self.update_where(
            artifact_id, SnapshotArtifact.status.in_(list(from_statuses)), status=to_status, **values
        )

    async def mark_deleting_for_session(self, organization_id: uuid.UUID, session_id: uuid.UUID) -> int:
        stmt = (
            sa.update(SnapshotArtifact)
            .where(
                SnapshotArtifact.organization_id == organization_id,
                SnapshotArtifact.session_id == session_id,
                SnapshotArtifact.kind.in_(("filesystem", "pause", "memory")),
                SnapshotArtifact.status == "available",
            )
            .values(status="deleting")
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def mark_deleting_for_organization(self, organization_id: uuid.UUID) -> int:
        stmt = (
            sa.update(SnapshotArtifact)
            .where(
                SnapshotArtifact.organization_id == organization_id, SnapshotArtifact.status == "available"
            )
            .values(status="deleting")
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def claim_deleting(self, limit: int = 50) -> list[SnapshotArtifact]:
        stmt = (
            sa.select(SnapshotArtifact)
            .where(SnapshotArtifact.status == "deleting")
            .with_for_update(skip_locked=True)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def expire_past(self, now: datetime) -> list[SnapshotArtifact]:
        stmt = (
            sa.update(SnapshotArtifact)
            .where(
                SnapshotArtifact.status == "available",
                SnapshotArtifact.expires_at.is_not(None),
                SnapshotArtifact.expires_at <= now,
            )
            .values(status="expired")
            .returning(SnapshotArtifact)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def stale_creating(self, older_than: datetime) -> list[SnapshotArtifact]:
        stmt = (
            sa.update(SnapshotArtifact)
            .where(SnapshotArtifact.status == "creating", SnapshotArtifact.created_at < older_than)
            .values(status="failed", error="abandoned: the capture did not finish", idempotency_key=None)
            .returning(SnapshotArtifact)
        )
        return list((await self.session.execute(stmt)).scalars())
