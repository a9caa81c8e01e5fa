from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.auth.models.base import Base, created_at_column, fk, id_column
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column


class EmailVerification(Base):
    """A verification link the mailer sent (hash only; 24 h; single use)."""

    __tablename__ = "email_verifications"

    id: Mapped[uuid.UUID] = id_column()
    token_hash: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False, unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        pg.UUID(as_uuid=True), fk("users.id", "CASCADE"), nullable=False, index=True
    )
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    consumed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
