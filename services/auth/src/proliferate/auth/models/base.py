"""The declarative base of the auth schema and the columns every table shares."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.kit.db import service_metadata
from proliferate.kit.ids import uuid7
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = service_metadata()


def id_column() -> Mapped[uuid.UUID]:
    return mapped_column(pg.UUID(as_uuid=True), primary_key=True, default=uuid7)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def updated_at_column() -> Mapped[datetime]:
    return mapped_column(
        sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now(), onupdate=sa.func.now()
    )


def fk(target: str, ondelete: str) -> sa.ForeignKey:
    return sa.ForeignKey(target, ondelete=ondelete)
