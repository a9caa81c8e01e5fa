"""`sandboxes`: one row per provider sandbox this service created (sandbox-provider.md §2)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from proliferate.sandbox.models.base import Base
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

LIVE_STATUSES = ("provisioning", "booting", "ready", "paused")
STATUSES = (*LIVE_STATUSES, "terminating", "terminated", "failed")
TERMINAL_STATUSES = ("terminated", "failed")
PURPOSES = ("session", "base_build")
PROVIDERS = ("modal", "e2b", "local")
PROMPT_MODES = ("setup", "coding", "automation", "scratch")
RESTORE_OUTCOMES = ("fresh", "restored", "fallback_fresh")
ISOLATIONS = ("namespaced", "bwrap", "process")
TERMINATE_REASONS = (
    "requested",
    "session_ended",
    "expired",
    "lost",
    "boot_failed",
    "orphan",
    "org_deleted",
    "limits_exceeded",
)


def _in(column: str, values: tuple[str, ...], *, nullable: bool = False) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    check = f"{column} IN ({listed})"
    return f"{column} IS NULL OR {check}" if nullable else check


class Sandbox(Base):
    __tablename__ = "sandboxes"

    id: Mapped[uuid.UUID] = mapped_column(pg.UUID(as_uuid=True), primary_key=True)
    organization_id: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True))
    session_id: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True))
    run_id: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True))
    purpose: Mapped[str] = mapped_column(sa.Text)
    provider: Mapped[str] = mapped_column(sa.Text)
    provider_namespace: Mapped[str] = mapped_column(sa.Text)
    provider_sandbox_id: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text)
    prompt_mode: Mapped[str | None] = mapped_column(sa.Text)
    source_artifact_id: Mapped[uuid.UUID | None] = mapped_column(
        pg.UUID(as_uuid=True), sa.ForeignKey("snapshot_artifacts.id")
    )
    base_artifact_id: Mapped[uuid.UUID | None] = mapped_column(
        pg.UUID(as_uuid=True), sa.ForeignKey("snapshot_artifacts.id")
    )
    restore_outcome: Mapped[str | None] = mapped_column(sa.Text)
    opencode_url: Mapped[str | None] = mapped_column(sa.Text)
    preview_url: Mapped[str | None] = mapped_column(sa.Text)
    isolation: Mapped[str | None] = mapped_column(sa.Text)
    host_id: Mapped[str | None] = mapped_column(sa.Text)
    port_base: Mapped[int | None] = mapped_column(sa.Integer)
    manifest_digest: Mapped[str | None] = mapped_column(sa.Text)
    # [{repo_id, workspace_path}] of the boot (no URLs, no tokens): capture records their commits.
    repos: Mapped[list[dict[str, str]]] = mapped_column(
        pg.JSONB, server_default=sa.text("'[]'::jsonb"), default=list
    )
    secret_file_paths: Mapped[list[str]] = mapped_column(
        pg.JSONB, server_default=sa.text("'[]'::jsonb"), default=list
    )
    op_kind: Mapped[str | None] = mapped_column(sa.Text)
    op_id: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True))
    op_expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    terminate_requested_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    terminate_reason: Mapped[str | None] = mapped_column(sa.Text)
    error_code: Mapped[str | None] = mapped_column(sa.Text)
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    boot_report: Mapped[dict[str, Any]] = mapped_column(
        pg.JSONB, server_default=sa.text("'{}'::jsonb"), default=dict
    )
    metered_through_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_seen_alive_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # First "not found" answer of the reaper; a row is lost only after a second one 60 s later.
    missing_since: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    ready_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    paused_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    terminated_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), onupdate=sa.func.now()
    )

    __table_args__ = (
        sa.CheckConstraint(_in("purpose", PURPOSES), name="purpose"),
        sa.CheckConstraint(_in("provider", PROVIDERS), name="provider"),
        sa.CheckConstraint(_in("status", STATUSES), name="status"),
        sa.CheckConstraint(_in("prompt_mode", PROMPT_MODES, nullable=True), name="prompt_mode"),
        sa.CheckConstraint(_in("restore_outcome", RESTORE_OUTCOMES, nullable=True), name="restore_outcome"),
        sa.CheckConstraint(_in("isolation", ISOLATIONS, nullable=True), name="isolation"),
        sa.CheckConstraint(
            _in("terminate_reason", TERMINATE_REASONS, nullable=True), name="terminate_reason"
        ),
        sa.CheckConstraint(
            "(organization_id IS NULL AND session_id IS NULL) = (purpose = 'base_build')",
            name="owner",
        ),
        sa.CheckConstraint("error_message IS NULL OR length(error_message) <= 2000", name="error_length"),
        sa.Index(
            "sandboxes_live_session_key",
            "session_id",
            unique=True,
            postgresql_where=sa.text("status IN ('provisioning','booting','ready','paused')"),
        ),
        sa.Index(
            "sandboxes_provider_ref_key",
            "provider",
            "provider_namespace",
            "provider_sandbox_id",
            unique=True,
            postgresql_where=sa.text("provider_sandbox_id IS NOT NULL"),
        ),
        sa.Index(
            "sandboxes_port_block_key",
            "host_id",
            "port_base",
            unique=True,
            postgresql_where=sa.text(
                "port_base IS NOT NULL AND status <> 'terminated' AND status <> 'failed'"
            ),
        ),
        sa.Index("sandboxes_status_expires_at_idx", "status", "expires_at"),
        sa.Index("sandboxes_organization_id_created_at_idx", "organization_id", sa.text("created_at DESC")),
    )
