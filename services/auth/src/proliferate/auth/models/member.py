from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.auth.models.base import Base, created_at_column, fk, id_column, updated_at_column
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column


class Member(Base):
    """User ↔ organization with a role: the authorization primitive."""

    __tablename__ = "members"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "user_id"),
        sa.Index("members_user_first_idx", "user_id", "created_at", "organization_id"),
        sa.CheckConstraint("role IN ('owner','admin','member')", name="role"),
    )

    id: Mapped[uuid.UUID] = id_column()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        pg.UUID(as_uuid=True), fk("organizations.id", "CASCADE"), nullable=False
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        pg.UUID(as_uuid=True), fk("users.id", "CASCADE"), nullable=False
    )
    role: Mapped[str] = mapped_column(sa.Text, nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
