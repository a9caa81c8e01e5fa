from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.auth.models.base import Base, created_at_column, fk, id_column
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column


class SignIn(Base):
    """An authenticated browser login: the hash of its opaque token, the active organization
    (a routing hint re-checked per request) and a super-admin's impersonation overlay."""

    __tablename__ = "sign_ins"
    __table_args__ = (
        sa.CheckConstraint(
            "(impersonated_user_id IS NULL AND impersonated_organization_id IS NULL"
            " AND impersonation_expires_at IS NULL) OR (impersonated_user_id IS NOT NULL"
            " AND impersonated_organization_id IS NOT NULL AND impersonation_expires_at IS NOT NULL)",
            name="impersonation_overlay",
        ),
        sa.CheckConstraint("char_length(user_agent) <= 512", name="user_agent"),
    )

    id: Mapped[uuid.UUID] = id_column()
    user_id: Mapped[uuid.UUID] = mapped_column(
        pg.UUID(as_uuid=True), fk("users.id", "CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False, unique=True)
    active_organization_id: Mapped[uuid.UUID | None] = mapped_column(
        pg.UUID(as_uuid=True), fk("organizations.id", "SET NULL")
    )
    impersonated_user_id: Mapped[uuid.UUID | None] = mapped_column(
        pg.UUID(as_uuid=True), fk("users.id", "SET NULL")
    )
    impersonated_organization_id: Mapped[uuid.UUID | None] = mapped_column(
        pg.UUID(as_uuid=True), fk("organizations.id", "SET NULL")
    )
    impersonation_expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    ip: Mapped[str | None] = mapped_column(pg.INET)
    user_agent: Mapped[str | None] = mapped_column(sa.Text)
    last_seen_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
