"""`org_blocks`: orgs whose LLM traffic is refused — a projection of billing's org events.

`blocked = false` keeps a resumed org's row as a tombstone carrying the event time, so a
`.paused` older than the `.resumed` that arrives late cannot block the org again.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.llm_proxy.models import Base
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column


class OrgBlock(Base):
    __tablename__ = "org_blocks"

    organization_id: Mapped[uuid.UUID] = mapped_column(pg.UUID(as_uuid=True), primary_key=True)
    reason: Mapped[str] = mapped_column(sa.Text)
    blocked: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    blocked_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    last_event_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
