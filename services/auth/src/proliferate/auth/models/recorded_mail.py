from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from proliferate.auth.models.base import Base, created_at_column, id_column
from sqlalchemy.orm import Mapped, mapped_column


class RecordedMail(Base):
    """Mails of the dev/test mailer (`MAILER=record`): what would have been sent, to read back.

    Only that mailer writes here; with a real mailer the table stays empty.
    """

    __tablename__ = "recorded_mails"

    id: Mapped[uuid.UUID] = id_column()
    recipient: Mapped[str] = mapped_column(sa.Text, nullable=False, index=True)
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    subject: Mapped[str] = mapped_column(sa.Text, nullable=False)
    body: Mapped[str] = mapped_column(sa.Text, nullable=False)
    link: Mapped[str] = mapped_column(sa.Text, nullable=False)
    created_at: Mapped[datetime] = created_at_column()
