"""SQLAlchemy models of the gateway schema, one module per table, re-exported here."""

from __future__ import annotations

from proliferate.kit.db import service_metadata
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    metadata = service_metadata()


__all__ = ["Base"]
