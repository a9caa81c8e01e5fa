from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.auth.models.base import Base, created_at_column, fk, id_column, updated_at_column
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column


class Invitation(Base):
    """An emailed, single-use invitation. The id is not the secret: `token_hash` is."""

    __tablename__ = "invitations"
    __table_args__ = (
        sa.Index(
            "invitations_pending_email_key",
            "organization_id",
            "email_normalized",
            unique=True,
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index("invitations_status_expires_at_idx", "status", "expires_at"),
        sa.CheckConstraint("role IN ('admin','member')", name="role"),
        sa.CheckConstraint("status IN ('pending','accepted','rejected','canceled','expired')", name="status"),
    )

    id: Mapped[uuid.UUID] = id_column()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        pg.UUID(as_uuid=True), fk("organizations.id", "CASCADE"), nullable=False
    )
    email: Mapped[str] = mapped_column(sa.Text, nullable=False)
    email_normalized: Mapped[str] = mapped_column(sa.Text, nullable=False)
    role: Mapped[str] = mapped_column(sa.Text, nullable=False)
    status: Mapped[str] = mapped_column(sa.Text, nullable=False)
    token_hash: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False, unique=True)
    inviter_user_id: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True))
    responded_by_user_id: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True))
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    responded_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
