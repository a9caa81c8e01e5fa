from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.auth.models.base import Base, created_at_column, fk, id_column, updated_at_column
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column


class Account(Base):
    """How a user signs in: a password (argon2id hash) or an OAuth identity."""

    __tablename__ = "accounts"
    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_account_id"),
        sa.UniqueConstraint("user_id", "provider"),
        sa.CheckConstraint("provider IN ('password','github','google')", name="provider"),
        sa.CheckConstraint("(provider = 'password') = (password_hash IS NOT NULL)", name="password_hash"),
    )

    id: Mapped[uuid.UUID] = id_column()
    user_id: Mapped[uuid.UUID] = mapped_column(
        pg.UUID(as_uuid=True), fk("users.id", "CASCADE"), nullable=False, index=True
    )
    provider: Mapped[str] = mapped_column(sa.Text, nullable=False)
    provider_account_id: Mapped[str] = mapped_column(sa.Text, nullable=False)
    provider_login: Mapped[str | None] = mapped_column(sa.Text)
    password_hash: Mapped[str | None] = mapped_column(sa.Text)
    last_used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
