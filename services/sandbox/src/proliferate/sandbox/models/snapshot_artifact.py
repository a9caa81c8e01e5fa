"""`snapshot_artifacts`: one row per provider-level saved filesystem state (sandbox-provider.md §2)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from proliferate.sandbox.models.base import Base
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

KINDS = ("filesystem", "pause", "memory", "base")
STATUSES = ("creating", "available", "deleting", "deleted", "failed", "expired")


class SnapshotArtifact(Base):
    __tablename__ = "snapshot_artifacts"

    id: Mapped[uuid.UUID] = mapped_column(pg.UUID(as_uuid=True), primary_key=True)
    organization_id: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True))
    provider: Mapped[str] = mapped_column(sa.Text)
    provider_namespace: Mapped[str] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.Text)
    provider_ref: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text)
    source_sandbox_id: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True))
    session_id: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True))
    version_key: Mapped[str | None] = mapped_column(sa.Text)
    scrubbed: Mapped[bool] = mapped_column(sa.Boolean)
    repo_commits: Mapped[list[dict[str, Any]]] = mapped_column(
        pg.JSONB, server_default=sa.text("'[]'::jsonb"), default=list
    )
    size_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    sha256: Mapped[str | None] = mapped_column(sa.Text)
    # The capture that made it (CaptureSnapshot idempotency key), scoped to its sandbox.
    idempotency_key: Mapped[str | None] = mapped_column(sa.Text)
    expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    available_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.CheckConstraint("kind IN ('filesystem', 'pause', 'memory', 'base')", name="kind"),
        sa.CheckConstraint(
            "status IN ('creating', 'available', 'deleting', 'deleted', 'failed', 'expired')", name="status"
        ),
        sa.CheckConstraint("provider IN ('modal', 'e2b', 'local')", name="provider"),
        sa.CheckConstraint("error IS NULL OR length(error) <= 2000", name="error_length"),
        sa.Index(
            "snapshot_artifacts_provider_ref_key",
            "provider",
            "provider_namespace",
            "provider_ref",
            unique=True,
            postgresql_where=sa.text("provider_ref IS NOT NULL"),
        ),
        sa.Index(
            "snapshot_artifacts_base_key",
            "provider",
            "provider_namespace",
            "version_key",
            unique=True,
            postgresql_where=sa.text("kind = 'base' AND status IN ('creating','available')"),
        ),
        sa.Index(
            "snapshot_artifacts_base_resolution_idx",
            "provider",
            "provider_namespace",
            "kind",
            "version_key",
            "status",
            sa.text("created_at DESC"),
        ),
        sa.Index("snapshot_artifacts_organization_id_session_id_idx", "organization_id", "session_id"),
        sa.Index(
            "snapshot_artifacts_idempotency_key",
            "source_sandbox_id",
            "idempotency_key",
            unique=True,
            postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        ),
    )
