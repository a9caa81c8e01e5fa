from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from proliferate.auth.models import OAuthState
from sqlalchemy.ext.asyncio import AsyncSession


class OAuthStateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(
        self,
        *,
        state_hash: bytes,
        provider: str,
        code_verifier: str,
        redirect_after: str,
        expires_at: datetime,
    ) -> None:
        await self.session.execute(
            sa.insert(OAuthState).values(
                state_hash=state_hash,
                provider=provider,
                code_verifier=code_verifier,
                redirect_after=redirect_after,
                expires_at=expires_at,
            )
        )

    async def consume(self, state_hash: bytes, provider: str, now: datetime) -> OAuthState | None:
        """The state, once: unused, unexpired and for this provider (guarded update)."""
        stmt = (
            sa.update(OAuthState)
            .where(
                OAuthState.state_hash == state_hash,
                OAuthState.provider == provider,
                OAuthState.consumed_at.is_(None),
                OAuthState.expires_at > now,
            )
            .values(consumed_at=now)
            .returning(OAuthState)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        return (await self.session.scalars(stmt)).first()

    async def purge_older_than(self, before: datetime) -> int:
        result = await self.session.execute(sa.delete(OAuthState).where(OAuthState.expires_at < before))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
