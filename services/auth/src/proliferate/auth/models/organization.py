from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from proliferate.auth.models.base import Base, created_at_column, fk, id_column, updated_at_column
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column


class Organization(Base):
    """The tenant boundary. Every query filters `deleted_at IS NULL` (soft delete)."""

    __tablename__ = "organizations"
    __table_args__ = (
        sa.Index("organizations_allowed_domains_idx", "allowed_domains", postgresql_using="gin"),
        sa.Index(
            "organizations_personal_owner_user_id_key",
            "personal_owner_user_id",
            unique=True,
            postgresql_where=sa.text("is_personal"),
        ),
        sa.CheckConstraint(
            "onboarding_status IN ('pending','checkout_pending','completed')", name="onboarding_status"
        ),
        sa.CheckConstraint("is_personal = (personal_owner_user_id IS NOT NULL)", name="personal_owner"),
    )

    id: Mapped[uuid.UUID] = id_column()
    name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    slug: Mapped[str] = mapped_column(sa.Text, nullable=False, unique=True)
    logo_url: Mapped[str | None] = mapped_column(sa.Text)
    is_personal: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, server_default=sa.false())
    personal_owner_user_id: Mapped[uuid.UUID | None] = mapped_column(
        pg.UUID(as_uuid=True), fk("users.id", "CASCADE")
    )
    allowed_domains: Mapped[list[str]] = mapped_column(
        pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'")
    )
    onboarding_status: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="pending")
    onboarding_completed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    onboarding_meta: Mapped[dict[str, Any]] = mapped_column(
        pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True))
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
