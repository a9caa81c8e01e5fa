from __future__ import annotations

import sqlalchemy as sa
from proliferate.auth.models import RecordedMail
from sqlalchemy.ext.asyncio import AsyncSession


class RecordedMailRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, *, recipient: str, kind: str, subject: str, body: str, link: str) -> None:
        await self.session.execute(
            sa.insert(RecordedMail).values(
                recipient=recipient, kind=kind, subject=subject, body=body, link=link
            )
        )

    async def list_for(self, recipient: str) -> list[RecordedMail]:
        return list(
            (
                await self.session.scalars(
                    sa.select(RecordedMail)
                    .where(RecordedMail.recipient == recipient)
                    .order_by(RecordedMail.created_at, RecordedMail.id)
                )
            ).all()
        )
