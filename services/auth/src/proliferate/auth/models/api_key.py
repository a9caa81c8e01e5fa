from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.auth.models.base import Base, created_at_column, fk, id_column
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column


class ApiKey(Base):
    """An org-bound bearer key `plf_<prefix>_<secret>`: `prefix` finds it, only the SHA-256 of
    the 32-byte secret is kept."""

    __tablename__ = "api_keys"
    __table_args__ = (sa.Index("api_keys_user_id_organization_id_idx", "user_id", "organization_id"),)

    id: Mapped[uuid.UUID] = id_column()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        pg.UUID(as_uuid=True), fk("organizations.id", "CASCADE"), nullable=False
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        pg.UUID(as_uuid=True), fk("users.id", "CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    prefix: Mapped[str] = mapped_column(sa.Text, nullable=False, unique=True)
    secret_hash: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)
    start: Mapped[str] = mapped_column(sa.Text, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
