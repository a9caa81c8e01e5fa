from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from proliferate.auth.models.base import Base, created_at_column
from sqlalchemy.orm import Mapped, mapped_column


class OAuthState(Base):
    """One OAuth sign-in attempt: the hashed `state` (single use, 10 min) and its PKCE verifier."""

    __tablename__ = "oauth_states"

    state_hash: Mapped[bytes] = mapped_column(sa.LargeBinary, primary_key=True)
    provider: Mapped[str] = mapped_column(sa.Text, nullable=False)
    code_verifier: Mapped[str] = mapped_column(sa.Text, nullable=False)
    redirect_after: Mapped[str] = mapped_column(sa.Text, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    consumed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
