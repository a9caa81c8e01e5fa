"""The declarative base of the sandbox schema."""

from __future__ import annotations

from proliferate.kit.db import service_metadata
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    metadata = service_metadata()
