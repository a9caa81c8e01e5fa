from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from proliferate.auth.models.base import Base, id_column
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column


class AdminAuditLog(Base):
    """What a super-admin did (impersonation start/switch/stop), append-only."""

    __tablename__ = "admin_audit_log"

    id: Mapped[uuid.UUID] = id_column()
    actor_user_id: Mapped[uuid.UUID] = mapped_column(pg.UUID(as_uuid=True), nullable=False)
    action: Mapped[str] = mapped_column(sa.Text, nullable=False)
    target_user_id: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True))
    target_organization_id: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True), index=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")
    )
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now(), index=True
    )
