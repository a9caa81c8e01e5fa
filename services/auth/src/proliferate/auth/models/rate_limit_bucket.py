from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from proliferate.auth.models.base import Base
from sqlalchemy.orm import Mapped, mapped_column


class RateLimitBucket(Base):
    """A fixed-window counter shared by every replica (one atomic upsert per hit)."""

    __tablename__ = "rate_limit_buckets"

    key: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    window_start: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    count: Mapped[int] = mapped_column(sa.Integer, nullable=False)
