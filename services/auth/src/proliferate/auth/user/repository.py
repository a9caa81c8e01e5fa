from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from proliferate.auth.models import Account, EmailVerification, PasswordReset, User
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email_normalized: str) -> User | None:
        return (
            await self.session.scalars(sa.select(User).where(User.email_normalized == email_normalized))
        ).first()

    async def insert(
        self, *, email: str, email_normalized: str, name: str, verified_at: datetime | None
    ) -> User | None:
        """The new user, or None when the email is taken (the unique index decides races)."""
        stmt = (
            pg_insert(User)
            .values(
                email=email,
                email_normalized=email_normalized,
                name=name,
                email_verified_at=verified_at,
            )
            .on_conflict_do_nothing(index_elements=["email_normalized"])
            .returning(User)
        )
        return (await self.session.scalars(stmt)).first()

    async def list_by_ids(self, ids: Sequence[uuid.UUID]) -> list[User]:
        if not ids:
            return []
        return list((await self.session.scalars(sa.select(User).where(User.id.in_(ids)))).all())

    async def mark_verified(self, user_id: uuid.UUID, at: datetime) -> bool:
        result = await self.session.execute(
            sa.update(User)
            .where(User.id == user_id, User.email_verified_at.is_(None))
            .values(email_verified_at=at)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def update_profile(self, user_id: uuid.UUID, *, name: str, image_url: str | None) -> None:
        await self.session.execute(
            sa.update(User).where(User.id == user_id).values(name=name, image_url=image_url)
        )

    async def search(self, q: str, after: uuid.UUID | None, limit: int) -> list[User]:
        stmt = sa.select(User).order_by(User.id).limit(limit)
        if after is not None:
            stmt = stmt.where(User.id > after)
        if q:
            pattern = f"%{_escape_like(q.lower())}%"
            stmt = stmt.where(
                sa.or_(
                    User.email_normalized.like(pattern, escape="\\"), User.name.ilike(pattern, escape="\\")
                )
            )
        return list((await self.session.scalars(stmt)).all())


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_password_account(self, user_id: uuid.UUID) -> Account | None:
        return (
            await self.session.scalars(
                sa.select(Account).where(Account.user_id == user_id, Account.provider == "password")
            )
        ).first()

    async def get_by_provider(self, provider: str, provider_account_id: str) -> Account | None:
        return (
            await self.session.scalars(
                sa.select(Account).where(
                    Account.provider == provider, Account.provider_account_id == provider_account_id
                )
            )
        ).first()

    async def insert_password(self, user_id: uuid.UUID, password_hash: str) -> None:
        self.session.add(
            Account(
                user_id=user_id,
                provider="password",
                provider_account_id=str(user_id),
                password_hash=password_hash,
            )
        )
        await self.session.flush()

    async def insert_oauth(
        self, user_id: uuid.UUID, provider: str, provider_account_id: str, login: str | None, now: datetime
    ) -> Account | None:
        stmt = (
            pg_insert(Account)
            .values(
                user_id=user_id,
                provider=provider,
                provider_account_id=provider_account_id,
                provider_login=login,
                last_used_at=now,
            )
            .on_conflict_do_nothing()
            .returning(Account)
        )
        return (await self.session.scalars(stmt)).first()

    async def set_password_hash(self, account_id: uuid.UUID, password_hash: str) -> None:
        await self.session.execute(
            sa.update(Account).where(Account.id == account_id).values(password_hash=password_hash)
        )

    async def upsert_password(self, user_id: uuid.UUID, password_hash: str) -> None:
        stmt = (
            pg_insert(Account)
            .values(
                user_id=user_id,
                provider="password",
                provider_account_id=str(user_id),
                password_hash=password_hash,
            )
            .on_conflict_do_update(
                index_elements=["user_id", "provider"], set_={"password_hash": password_hash}
            )
        )
        await self.session.execute(stmt)

    async def touch(self, account_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            sa.update(Account).where(Account.id == account_id).values(last_used_at=now)
        )

    async def delete_password(self, user_id: uuid.UUID) -> None:
        await self.session.execute(
            sa.delete(Account).where(Account.user_id == user_id, Account.provider == "password")
        )


class LinkRepository:
    """Single-use links (email verification, password reset): hash, owner, expiry."""

    def __init__(self, session: AsyncSession, model: type[EmailVerification] | type[PasswordReset]) -> None:
        self.session = session
        self.model = model

    async def insert(self, user_id: uuid.UUID, token_hash: bytes, expires_at: datetime) -> None:
        await self.session.execute(
            sa.insert(self.model).values(user_id=user_id, token_hash=token_hash, expires_at=expires_at)
        )

    async def consume(self, token_hash: bytes, now: datetime) -> uuid.UUID | None:
        """The link's user when it was unused and unexpired (guarded: consumed once)."""
        model = self.model
        row = (
            await self.session.execute(
                sa.update(model)
                .where(model.token_hash == token_hash, model.consumed_at.is_(None), model.expires_at > now)
                .values(consumed_at=now)
                .returning(model.user_id)
            )
        ).first()
        return row.user_id if row else None

    async def state(self, token_hash: bytes) -> tuple[datetime | None, datetime] | None:
        """(consumed_at, expires_at) of a link, None when unknown."""
        model = self.model
        row = (
            await self.session.execute(
                sa.select(model.consumed_at, model.expires_at).where(model.token_hash == token_hash)
            )
        ).first()
        return (row.consumed_at, row.expires_at) if row else None

    async def purge_older_than(self, before: datetime) -> int:
        model = self.model
        result = await self.session.execute(sa.delete(model).where(model.expires_at < before))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
