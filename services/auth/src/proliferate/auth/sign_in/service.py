"""Sign-up, password sign-in, sign-out, active organization, and authenticating a request
(auth.md §5.1, §5.2, §5.4, §5.5)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from proliferate.auth import credentials, validation
from proliferate.auth.admin import events as admin_events
from proliferate.auth.context import AuthContext
from proliferate.auth.errors import (
    EmailNotVerified,
    InvalidCredentials,
    Refused,
    SignupClosed,
    exists,
    forbidden,
    not_found,
)
from proliferate.auth.invitation.repository import InvitationRepository
from proliferate.auth.member.repository import MemberRepository
from proliferate.auth.models import SignIn, User
from proliferate.auth.rate_limit import service as limits
from proliferate.auth.sign_in import events
from proliferate.auth.sign_in.activation import activate_organization
from proliferate.auth.sign_in.repository import SignInRepository
from proliferate.auth.user.repository import AccountRepository, UserRepository
from proliferate.auth.user.service import register_user, verify_email
from proliferate.kit.errors import Unauthenticated
from proliferate.kit.principal import Principal, PrincipalKind
from sqlalchemy.ext.asyncio import AsyncSession

SIGN_IN_TTL = timedelta(days=7)
RENEW_AFTER = timedelta(hours=24)
TOUCH_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class ClientMeta:
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Issued:
    """A new sign-in: its token exists only here (the database keeps the hash)."""

    token: str
    expires_at: datetime
    principal: Principal


def user_principal(
    ctx: AuthContext,
    user: User,
    organization_id: uuid.UUID | None,
    role: str | None,
    credential_id: uuid.UUID,
    kind: PrincipalKind = PrincipalKind.USER,
) -> Principal:
    return Principal(
        kind=kind,
        user_id=str(user.id),
        organization_id=str(organization_id or ""),
        role=role or "",
        credential_id=str(credential_id),
        email=user.email,
        is_super_admin=kind is PrincipalKind.USER and ctx.is_super_admin(user),
    )


async def issue_sign_in(
    session: AsyncSession,
    ctx: AuthContext,
    user: User,
    organization_id: uuid.UUID | None,
    role: str | None,
    client: ClientMeta,
) -> Issued:
    token = credentials.new_token()
    now = ctx.clock.now()
    sign_in = await SignInRepository(session).insert(
        user_id=user.id,
        token_hash=credentials.hash_token(token),
        active_organization_id=organization_id,
        ip=client.ip or None,
        user_agent=(client.user_agent or "")[:512] or None,
        now=now,
        expires_at=now + SIGN_IN_TTL,
    )
    return Issued(token, sign_in.expires_at, user_principal(ctx, user, organization_id, role, sign_in.id))


async def sign_up(
    session: AsyncSession, ctx: AuthContext, *, email: str, password: str, name: str, client: ClientMeta
) -> Issued | Refused:
    email = validation.clean_email(email)
    name = validation.clean_name(name)
    validation.check_password(password)
    now = ctx.clock.now()
    if client.ip:
        await limits.consume(session, limits.SIGN_UPS_PER_IP, client.ip, now)
    normalized = validation.normalize_email(email)
    listed = not ctx.allowed_signup_emails or normalized in ctx.allowed_signup_emails
    if not listed and not await InvitationRepository(session).has_pending_for_email(normalized, now):
        return Refused(SignupClosed())
    registered = await register_user(
        session, email=email, name=name, verified_at=None, password_hash=await ctx.passwords.hash(password)
    )
    if registered is None:
        return Refused(exists("email_taken", "an account with this email already exists"))
    if ctx.require_email_verification:
        # The account exists; the mailer sends the link on user.created. No sign-in yet.
        return Refused(EmailNotVerified())
    return await issue_sign_in(session, ctx, registered.user, registered.organization.id, "owner", client)


async def sign_in_with_password(
    session: AsyncSession, ctx: AuthContext, *, email: str, password: str, client: ClientMeta
) -> Issued | Refused:
    normalized = validation.normalize_email(email)
    now = ctx.clock.now()
    await limits.check(session, limits.SIGN_IN_FAILURES_PER_EMAIL, normalized, now)
    if client.ip:
        await limits.check(session, limits.SIGN_IN_FAILURES_PER_IP, client.ip, now)
    user = await UserRepository(session).get_by_email(normalized)
    accounts = AccountRepository(session)
    account = await accounts.get_password_account(user.id) if user is not None else None
    # An unknown email verifies a dummy hash: same work, same answer, same time.
    if not await ctx.passwords.verify(account.password_hash if account else None, password):
        await limits.record(session, limits.SIGN_IN_FAILURES_PER_EMAIL, normalized, now)
        if client.ip:
            await limits.record(session, limits.SIGN_IN_FAILURES_PER_IP, client.ip, now)
        return Refused(InvalidCredentials())
    assert user is not None and account is not None and account.password_hash is not None
    if ctx.require_email_verification and user.email_verified_at is None:
        return Refused(EmailNotVerified())
    if ctx.passwords.needs_rehash(account.password_hash):
        await accounts.set_password_hash(account.id, await ctx.passwords.hash(password))
    await accounts.touch(account.id, now)
    org_id, role = await choose_organization(session, user.id)
    return await issue_sign_in(session, ctx, user, org_id, role, client)


async def sign_in_with_verification_link(
    session: AsyncSession, ctx: AuthContext, token: str, client: ClientMeta
) -> Issued:
    """Consume a verification link (the email becomes verified) and sign the user in."""
    user = await verify_email(session, ctx.clock, token)
    org_id, role = await choose_organization(session, user.id)
    return await issue_sign_in(session, ctx, user, org_id, role, client)


async def choose_organization(
    session: AsyncSession, user_id: uuid.UUID
) -> tuple[uuid.UUID | None, str | None]:
    """The last valid active organization of the user, else the first membership."""
    members = MemberRepository(session)
    last = await SignInRepository(session).last_active_organization(user_id)
    if last is not None:
        role = await members.role_of(last, user_id)
        if role is not None:
            return last, role
    first = await members.first_membership(user_id)
    return (first[0], first[1]) if first else (None, None)


async def sign_out(session: AsyncSession, ctx: AuthContext, principal: Principal) -> None:
    if principal.kind is not PrincipalKind.USER or not principal.credential_id:
        return
    real_user = uuid.UUID(principal.impersonator_user_id or principal.user_id)
    sign_in_id = uuid.UUID(principal.credential_id)
    if await SignInRepository(session).revoke(sign_in_id, real_user, ctx.clock.now()):
        events.sign_in_revoked(session, sign_in_id, real_user)


# --- authenticating a request (§5.4) -------------------------------------------------------


async def authenticate_sign_in(
    session: AsyncSession, ctx: AuthContext, token: str, requested_organization_id: str
) -> Principal:
    now = ctx.clock.now()
    repo = SignInRepository(session)
    sign_in = await repo.get_active_by_hash(credentials.hash_token(token), now)
    if sign_in is None:
        raise Unauthenticated("the sign-in is unknown, expired or revoked")
    user = await UserRepository(session).get(sign_in.user_id)
    if user is None:  # pragma: no cover - the sign-in cascades with its user
        raise Unauthenticated("the sign-in is unknown, expired or revoked")
    renew = sign_in.expires_at - now < SIGN_IN_TTL - RENEW_AFTER
    if renew or now - sign_in.last_seen_at >= TOUCH_AFTER:
        await repo.touch(sign_in.id, now, now + SIGN_IN_TTL if renew else None)
    if sign_in.impersonated_user_id is not None:
        overlay = await _impersonation(session, ctx, sign_in, user, now)
        if overlay is not None:
            if requested_organization_id and requested_organization_id != overlay.organization_id:
                raise not_found("organization")
            return overlay
    org_id, role = await _acting_organization(session, sign_in, requested_organization_id)
    return user_principal(ctx, user, org_id, role, sign_in.id)


async def _acting_organization(
    session: AsyncSession, sign_in: SignIn, requested: str
) -> tuple[uuid.UUID | None, str | None]:
    members = MemberRepository(session)
    if requested:
        org_id = validation.parse_id(requested, "organization")
        role = await members.role_of(org_id, sign_in.user_id)
        if role is None:
            raise not_found("organization")
        return org_id, role
    if sign_in.active_organization_id is not None:
        role = await members.role_of(sign_in.active_organization_id, sign_in.user_id)
        if role is not None:
            return sign_in.active_organization_id, role
    # The active organization is gone (removed, left, deleted): repair to the first membership.
    first = await members.first_membership(sign_in.user_id)
    repaired = first[0] if first else None
    if repaired != sign_in.active_organization_id:
        await SignInRepository(session).set_active_organization(sign_in.id, repaired)
    return (first[0], first[1]) if first else (None, None)


async def _impersonation(
    session: AsyncSession, ctx: AuthContext, sign_in: SignIn, real_user: User, now: datetime
) -> Principal | None:
    """The impersonated principal while the overlay is still valid; otherwise the overlay is
    cleared (expired, target gone from the org, or the real user no longer a super-admin)."""
    target_id, org_id = sign_in.impersonated_user_id, sign_in.impersonated_organization_id
    target = await UserRepository(session).get(target_id) if target_id else None
    role = await MemberRepository(session).role_of(org_id, target.id) if target and org_id else None
    valid = (
        sign_in.impersonation_expires_at is not None
        and sign_in.impersonation_expires_at > now
        and ctx.is_super_admin(real_user)
        and target is not None
        and role is not None
        and not ctx.is_super_admin(target)
    )
    if not valid or target is None:
        await SignInRepository(session).set_overlay(sign_in.id, None, None, None)
        admin_events.impersonation_stopped(session, real_user.id, target_id or "", org_id or "")
        return None
    return Principal(
        kind=PrincipalKind.USER,
        user_id=str(target.id),
        organization_id=str(org_id),
        role=role or "",
        credential_id=str(sign_in.id),
        impersonator_user_id=str(real_user.id),
        email=target.email,
        is_super_admin=False,
    )


async def set_active_organization(
    session: AsyncSession, ctx: AuthContext, principal: Principal, organization_id: str
) -> Principal:
    if principal.kind is not PrincipalKind.USER or not principal.credential_id:
        raise forbidden("an API key acts only in its own organization")
    if principal.impersonator_user_id:
        raise forbidden("switch the impersonated organization instead")
    org_id = validation.parse_id(organization_id, "organization")
    user_id = uuid.UUID(principal.user_id)
    role = await MemberRepository(session).role_of(org_id, user_id)
    if role is None:
        raise not_found("organization")
    sign_ins = SignInRepository(session)
    if await sign_ins.get_active(uuid.UUID(principal.credential_id), user_id, ctx.clock.now()) is None:
        raise Unauthenticated("the sign-in is unknown, expired or revoked")
    await activate_organization(session, uuid.UUID(principal.credential_id), user_id, org_id)
    user = await UserRepository(session).get(user_id)
    assert user is not None
    return user_principal(ctx, user, org_id, role, uuid.UUID(principal.credential_id))


def raise_refusal(outcome: object) -> None:
    if isinstance(outcome, Refused):
        raise outcome.error
