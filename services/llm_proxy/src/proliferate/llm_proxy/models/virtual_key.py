"""`virtual_keys`: the keys sandboxes hold; only the SHA-256 of a key and its prefix are stored."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.llm_proxy.models import Base
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

SCOPES = ("session", "service")
STATUSES = ("active", "revoked", "expired")
BUDGET_SOURCES = ("caller", "billing")
REVOKE_REASONS = (
    "replaced",
    "session_paused",
    "session_completed",
    "session_failed",
    "run_finished",
    "org_deleted",
    "explicit",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class VirtualKey(Base):
    __tablename__ = "virtual_keys"

    id: Mapped[uuid.UUID] = mapped_column(pg.UUID(as_uuid=True), primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(pg.UUID(as_uuid=True))
    scope: Mapped[str] = mapped_column(sa.Text)
    session_id: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True))
    run_id: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True))
    purpose: Mapped[str | None] = mapped_column(sa.Text)
    key_hash: Mapped[bytes] = mapped_column(sa.LargeBinary, unique=True)
    key_prefix: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text)
    max_budget_micros: Mapped[int | None] = mapped_column(sa.BigInteger)
    budget_source: Mapped[str] = mapped_column(sa.Text)
    spend_micros: Mapped[int] = mapped_column(sa.BigInteger, server_default=sa.text("0"))
    request_count: Mapped[int] = mapped_column(sa.BigInteger, server_default=sa.text("0"))
    allowed_models: Mapped[list[str] | None] = mapped_column(pg.ARRAY(sa.Text))
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    issued_by: Mapped[str] = mapped_column(sa.Text)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoke_reason: Mapped[str | None] = mapped_column(sa.Text)
    last_used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint(_in("scope", SCOPES), name="scope"),
        sa.CheckConstraint(_in("status", STATUSES), name="status"),
        sa.CheckConstraint(_in("budget_source", BUDGET_SOURCES), name="budget_source"),
        sa.CheckConstraint(
            f"revoke_reason IS NULL OR {_in('revoke_reason', REVOKE_REASONS)}", name="revoke_reason"
        ),
        sa.CheckConstraint("(scope = 'session') = (session_id IS NOT NULL)", name="session_scope"),
        sa.CheckConstraint(
            "purpose IS NULL OR (scope = 'service' AND length(purpose) <= 64)", name="purpose"
        ),
        # One live key per session: the original's replace-by-alias.
        sa.Index(
            "virtual_keys_active_session_idx",
            "session_id",
            unique=True,
            postgresql_where=sa.text("status = 'active' AND scope = 'session'"),
        ),
        sa.Index("virtual_keys_organization_id_status_idx", "organization_id", "status"),
        sa.Index("virtual_keys_run_id_idx", "run_id", postgresql_where=sa.text("run_id IS NOT NULL")),
        sa.Index("virtual_keys_expires_at_idx", "expires_at", postgresql_where=sa.text("status = 'active'")),
    )
