"""Users: registration (with the personal organization, auth.md §5.1), the current user,
email verification (§5.10) and password reset."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from proliferate.auth import credentials, validation
from proliferate.auth.clock import Clock
from proliferate.auth.errors import InvalidArgument, conflict, invalid
from proliferate.auth.models import EmailVerification, Organization, PasswordReset, User
from proliferate.auth.organization.repository import OrganizationRepository
from proliferate.auth.organization.service import create_personal_organization
from proliferate.auth.rate_limit import service as limits
from proliferate.auth.sign_in import events as sign_in_events
from proliferate.auth.sign_in.passwords import PasswordHasher
from proliferate.auth.sign_in.repository import SignInRepository
from proliferate.auth.user import events
from proliferate.auth.user.repository import AccountRepository, LinkRepository, UserRepository
from proliferate.kit.errors import Unauthenticated
from proliferate.kit.principal import Principal
from sqlalchemy.ext.asyncio import AsyncSession

VERIFICATION_TTL = timedelta(hours=24)
PASSWORD_RESET_TTL = timedelta(hours=1)
MAX_BATCH = 100


@dataclass(frozen=True)
class Registered:
    user: User
    organization: Organization


async def register_user(
    session: AsyncSession,
    *,
    email: str,
    name: str,
    verified_at: datetime | None,
    password_hash: str | None = None,
) -> Registered | None:
    """User, password account (if any), personal organization and owner membership, with their
    events, in the caller's transaction. None when the email is taken."""
    user = await UserRepository(session).insert(
        email=email, email_normalized=validation.normalize_email(email), name=name, verified_at=verified_at
    )
    if user is None:
        return None
    if password_hash is not None:
        await AccountRepository(session).insert_password(user.id, password_hash)
    events.user_created(session, user)
    org = await create_personal_organization(session, user)
    return Registered(user, org)


async def get_me(session: AsyncSession, principal: Principal) -> tuple[User, Organization | None]:
    user = await UserRepository(session).get(uuid.UUID(principal.user_id))
    if user is None:
        raise Unauthenticated("the user no longer exists")
    org = None
    if principal.organization_id:
        org = await OrganizationRepository(session).get(uuid.UUID(principal.organization_id))
    return user, org


async def batch_get(session: AsyncSession, user_ids: Sequence[str]) -> list[User]:
    if len(user_ids) > MAX_BATCH:
        raise invalid("user_ids", f"at most {MAX_BATCH} ids")
    ids = []
    for raw in user_ids:
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            raise invalid("user_ids", f"{raw!r} is not an id") from None
    return await UserRepository(session).list_by_ids(ids)


# --- email verification --------------------------------------------------------------------


async def new_verification_link(session: AsyncSession, clock: Clock, user_id: uuid.UUID) -> str:
    """A fresh verification token (hash stored, 24 h) for the mailer to send."""
    token = credentials.new_token()
    await LinkRepository(session, EmailVerification).insert(
        user_id, credentials.hash_token(token), clock.now() + VERIFICATION_TTL
    )
    return token


async def verify_email(session: AsyncSession, clock: Clock, token: str) -> User:
    """Consume a verification link once; the user becomes verified (never back)."""
    now = clock.now()
    links = LinkRepository(session, EmailVerification)
    token_hash = credentials.hash_token(token)
    user_id = await links.consume(token_hash, now)
    if user_id is None:
        raise _link_error(await links.state(token_hash), "verification")
    users = UserRepository(session)
    if await users.mark_verified(user_id, now):
        events.user_verified(session, user_id)
    user = await users.get(user_id)
    assert user is not None
    return user


def _link_error(state: tuple[datetime | None, datetime] | None, what: str) -> Exception:
    if state is None:
        return InvalidArgument(f"this {what} link is not valid", code="invalid_link")
    if state[0] is not None:
        return conflict("link_used", f"this {what} link was already used")
    return conflict("link_expired", f"this {what} link has expired; ask for a new one")


async def resend_verification(session: AsyncSession, clock: Clock, email: str) -> None:
    """Ask the mailer for a new link (3 per hour per user). Unknown or verified emails are
    answered the same way, so the call reveals nothing."""
    user = await UserRepository(session).get_by_email(validation.normalize_email(email))
    if user is None or user.email_verified_at is not None:
        return
    await limits.consume(session, limits.VERIFICATION_RESENDS_PER_USER, str(user.id), clock.now())
    events.verification_requested(session, user.id)


# --- password reset ------------------------------------------------------------------------


async def request_password_reset(session: AsyncSession, clock: Clock, email: str) -> None:
    """The mailer sends a reset link (3 per hour per user); unknown emails look the same."""
    user = await UserRepository(session).get_by_email(validation.normalize_email(email))
    if user is None:
        return
    await limits.consume(session, limits.PASSWORD_RESETS_PER_USER, str(user.id), clock.now())
    events.password_reset_requested(session, user.id)


async def new_password_reset_link(session: AsyncSession, clock: Clock, user_id: uuid.UUID) -> str:
    token = credentials.new_token()
    await LinkRepository(session, PasswordReset).insert(
        user_id, credentials.hash_token(token), clock.now() + PASSWORD_RESET_TTL
    )
    return token


async def reset_password(
    session: AsyncSession, clock: Clock, passwords: PasswordHasher, token: str, password: str
) -> None:
    """Set a new password from a reset link; every sign-in of the user is revoked. The link
    proves the mailbox, so an unverified user becomes verified."""
    validation.check_password(password)
    now = clock.now()
    links = LinkRepository(session, PasswordReset)
    token_hash = credentials.hash_token(token)
    user_id = await links.consume(token_hash, now)
    if user_id is None:
        raise _link_error(await links.state(token_hash), "password reset")
    await AccountRepository(session).upsert_password(user_id, await passwords.hash(password))
    if await UserRepository(session).mark_verified(user_id, now):
        events.user_verified(session, user_id)
    for sign_in_id in await SignInRepository(session).revoke_all_for_user(user_id, now):
        sign_in_events.sign_in_revoked(session, sign_in_id, user_id)
