"""`spend_records`: one row per proxied request, `in_flight` until it finalizes."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.llm_proxy.models import Base
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

APIS = ("openai_chat", "anthropic_messages", "embeddings")
STATUSES = ("in_flight", "succeeded", "failed", "client_aborted", "abandoned")


class SpendRecord(Base):
    __tablename__ = "spend_records"

    request_id: Mapped[uuid.UUID] = mapped_column(pg.UUID(as_uuid=True), primary_key=True)
    virtual_key_id: Mapped[uuid.UUID] = mapped_column(pg.UUID(as_uuid=True))
    organization_id: Mapped[uuid.UUID] = mapped_column(pg.UUID(as_uuid=True))
    session_id: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True))
    run_id: Mapped[uuid.UUID | None] = mapped_column(pg.UUID(as_uuid=True))
    api: Mapped[str] = mapped_column(sa.Text)
    requested_model: Mapped[str] = mapped_column(sa.Text)
    routed_model: Mapped[str | None] = mapped_column(sa.Text)
    stream: Mapped[bool] = mapped_column(sa.Boolean)
    status: Mapped[str] = mapped_column(sa.Text)
    http_status: Mapped[int | None] = mapped_column(sa.Integer)
    error_code: Mapped[str | None] = mapped_column(sa.Text)
    prompt_tokens: Mapped[int] = mapped_column(sa.Integer, server_default=sa.text("0"))
    completion_tokens: Mapped[int] = mapped_column(sa.Integer, server_default=sa.text("0"))
    cache_read_tokens: Mapped[int] = mapped_column(sa.Integer, server_default=sa.text("0"))
    cache_write_tokens: Mapped[int] = mapped_column(sa.Integer, server_default=sa.text("0"))
    cost_micros: Mapped[int] = mapped_column(sa.BigInteger, server_default=sa.text("0"))
    usage_estimated: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    started_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    first_byte_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.CheckConstraint(f"api IN ({', '.join(repr(a) for a in APIS)})", name="api"),
        sa.CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
        sa.Index(
            "spend_records_organization_id_started_at_idx", "organization_id", sa.text("started_at DESC")
        ),
        sa.Index("spend_records_session_id_started_at_idx", "session_id", "started_at"),
        sa.Index("spend_records_virtual_key_id_idx", "virtual_key_id"),
        sa.Index(
            "spend_records_in_flight_idx", "started_at", postgresql_where=sa.text("status = 'in_flight'")
        ),
    )
