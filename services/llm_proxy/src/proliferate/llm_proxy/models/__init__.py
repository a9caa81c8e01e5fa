"""SQLAlchemy models of the llm_proxy schema, one module per table, re-exported here."""

from __future__ import annotations

from proliferate.kit.db import service_metadata
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    metadata = service_metadata()


from proliferate.llm_proxy.models.org_block import OrgBlock  # noqa: E402
from proliferate.llm_proxy.models.spend_record import SpendRecord  # noqa: E402
from proliferate.llm_proxy.models.virtual_key import VirtualKey  # noqa: E402

__all__ = ["Base", "OrgBlock", "SpendRecord", "VirtualKey"]
