from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.auth.models.base import Base, created_at_column, id_column, updated_at_column
from sqlalchemy.orm import Mapped, mapped_column


class User(Base):
    """One person, one email (`email_normalized` = lower(trim(email)) is what lookups use)."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = id_column()
    email: Mapped[str] = mapped_column(sa.Text, nullable=False)
    email_normalized: Mapped[str] = mapped_column(sa.Text, nullable=False, unique=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    image_url: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
