"""Super-admins (auth.md §5.11): configured emails that are verified. They list users and
organizations, and impersonate a member through an overlay on their own sign-in that every
request re-validates; each change is audited and published."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from proliferate.auth import validation
from proliferate.auth.admin import events
from proliferate.auth.admin.repository import AdminAuditRepository
from proliferate.auth.context import AuthContext
from proliferate.auth.errors import conflict, forbidden, invalid, not_found
from proliferate.auth.member.repository import MemberRepository
from proliferate.auth.models import Organization, SignIn, User
from proliferate.auth.organization.repository import OrganizationRepository
from proliferate.auth.sign_in.repository import SignInRepository
from proliferate.auth.user.repository import UserRepository
from proliferate.kit.errors import Unauthenticated
from proliferate.kit.principal import Principal, PrincipalKind
from sqlalchemy.ext.asyncio import AsyncSession

IMPERSONATION_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class Overlay:
    user_id: uuid.UUID
    organization_id: uuid.UUID
    expires_at: datetime


@dataclass(frozen=True)
class AdminView:
    is_super_admin: bool
    impersonation: Overlay | None = None


def _overlay(sign_in: SignIn | None) -> Overlay | None:
    if sign_in is None or sign_in.impersonated_user_id is None:
        return None
    assert sign_in.impersonated_organization_id is not None and sign_in.impersonation_expires_at is not None
    return Overlay(
        sign_in.impersonated_user_id, sign_in.impersonated_organization_id, sign_in.impersonation_expires_at
    )


async def _sign_in_of(
    session: AsyncSession, ctx: AuthContext, principal: Principal
) -> tuple[User, SignIn] | None:
    if principal.kind is not PrincipalKind.USER or not principal.credential_id:
        return None
    real = uuid.UUID(principal.impersonator_user_id or principal.user_id)
    user = await UserRepository(session).get(real)
    sign_in = await SignInRepository(session).get_active(
        uuid.UUID(principal.credential_id), real, ctx.clock.now()
    )
    return (user, sign_in) if user is not None and sign_in is not None else None


async def admin_status(session: AsyncSession, ctx: AuthContext, principal: Principal) -> AdminView:
    found = await _sign_in_of(session, ctx, principal)
    if found is None or not ctx.is_super_admin(found[0]):
        return AdminView(False)
    await session.refresh(found[1])
    return AdminView(True, _overlay(found[1]))


async def _require_super_admin(
    session: AsyncSession, ctx: AuthContext, principal: Principal
) -> tuple[User, SignIn]:
    if principal.kind is not PrincipalKind.USER:
        raise forbidden("super-admin actions need a sign-in, never an API key")
    found = await _sign_in_of(session, ctx, principal)
    if found is None:
        raise Unauthenticated("the sign-in is unknown, expired or revoked")
    if not ctx.is_super_admin(found[0]):
        raise forbidden("this needs a super-admin")
    return found


def _page(cursor: str, limit: int) -> tuple[uuid.UUID | None, int]:
    limit = limit or 25
    if not 1 <= limit <= 100:
        raise invalid("limit", "must be 1 to 100")
    if not cursor:
        return None, limit
    try:
        return uuid.UUID(cursor), limit
    except ValueError:
        raise invalid("cursor", "is not a cursor from a previous page") from None


async def list_users(
    session: AsyncSession, ctx: AuthContext, principal: Principal, cursor: str, limit: int, q: str
) -> tuple[list[User], str]:
    await _require_super_admin(session, ctx, principal)
    after, limit = _page(cursor, limit)
    users = await UserRepository(session).search(q.strip(), after, limit + 1)
    return users[:limit], str(users[limit - 1].id) if len(users) > limit else ""


async def list_organizations(
    session: AsyncSession, ctx: AuthContext, principal: Principal, cursor: str, limit: int, q: str
) -> tuple[list[Organization], str]:
    await _require_super_admin(session, ctx, principal)
    after, limit = _page(cursor, limit)
    orgs = await OrganizationRepository(session).search(q.strip(), after, limit + 1)
    return orgs[:limit], str(orgs[limit - 1].id) if len(orgs) > limit else ""


async def start_impersonation(
    session: AsyncSession, ctx: AuthContext, principal: Principal, user_id: str, organization_id: str
) -> AdminView:
    actor, sign_in = await _require_super_admin(session, ctx, principal)
    target = await UserRepository(session).get(validation.parse_id(user_id, "user"))
    if target is None:
        raise not_found("user")
    org = await OrganizationRepository(session).get(validation.parse_id(organization_id, "organization"))
    if org is None:
        raise not_found("organization")
    if ctx.is_super_admin(target):
        raise forbidden("a super-admin is never impersonated")
    if await MemberRepository(session).role_of(org.id, target.id) is None:
        raise conflict("not_a_member", "that user is not a member of that organization")
    return await _set_overlay(session, ctx, actor, sign_in, target.id, org.id, "impersonation_started")


async def switch_organization(
    session: AsyncSession, ctx: AuthContext, principal: Principal, organization_id: str
) -> AdminView:
    actor, sign_in = await _require_super_admin(session, ctx, principal)
    if sign_in.impersonated_user_id is None:
        raise conflict("not_impersonating", "start an impersonation first")
    org = await OrganizationRepository(session).get(validation.parse_id(organization_id, "organization"))
    if org is None:
        raise not_found("organization")
    if await MemberRepository(session).role_of(org.id, sign_in.impersonated_user_id) is None:
        raise conflict("not_a_member", "the impersonated user is not a member of that organization")
    return await _set_overlay(
        session, ctx, actor, sign_in, sign_in.impersonated_user_id, org.id, "impersonation_switched"
    )


async def stop_impersonation(session: AsyncSession, ctx: AuthContext, principal: Principal) -> AdminView:
    actor, sign_in = await _require_super_admin(session, ctx, principal)
    if sign_in.impersonated_user_id is not None:
        target, org = sign_in.impersonated_user_id, sign_in.impersonated_organization_id
        await SignInRepository(session).set_overlay(sign_in.id, None, None, None)
        await AdminAuditRepository(session).record(
            actor_user_id=actor.id,
            action="impersonation_stopped",
            target_user_id=target,
            target_organization_id=org,
        )
        events.impersonation_stopped(session, actor.id, target, org)
    return AdminView(True)


async def _set_overlay(
    session: AsyncSession,
    ctx: AuthContext,
    actor: User,
    sign_in: SignIn,
    target_id: uuid.UUID,
    org_id: uuid.UUID,
    action: str,
) -> AdminView:
    expires_at = ctx.clock.now() + IMPERSONATION_TTL
    if sign_in.impersonated_user_id is not None:
        events.impersonation_stopped(
            session, actor.id, sign_in.impersonated_user_id, sign_in.impersonated_organization_id
        )
    await SignInRepository(session).set_overlay(sign_in.id, target_id, org_id, expires_at)
    await AdminAuditRepository(session).record(
        actor_user_id=actor.id, action=action, target_user_id=target_id, target_organization_id=org_id
    )
    events.impersonation_started(session, actor.id, target_id, org_id)
    return AdminView(True, Overlay(target_id, org_id, expires_at))
