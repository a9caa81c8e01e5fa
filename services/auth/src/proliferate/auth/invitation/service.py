"""Invitations (auth.md §3, §5.6): pending → accepted | rejected | canceled | expired, each
transition one guarded UPDATE; 0 rows and the current state decides the answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from proliferate.auth import credentials, validation
from proliferate.auth.context import AuthContext
from proliferate.auth.errors import (
    FailedPrecondition,
    InvitationEmailMismatch,
    Refused,
    conflict,
    exists,
    forbidden,
    invalid,
    not_found,
)
from proliferate.auth.invitation import events
from proliferate.auth.invitation.repository import InvitationRepository
from proliferate.auth.member import events as member_events
from proliferate.auth.member.repository import MemberRepository
from proliferate.auth.models import Invitation, Member, User
from proliferate.auth.organization.service import get_visible, require_role
from proliferate.auth.rate_limit import service as limits
from proliferate.auth.sign_in.activation import activate_organization
from proliferate.auth.user.repository import UserRepository
from proliferate.kit.principal import Principal, PrincipalKind
from sqlalchemy.ext.asyncio import AsyncSession

INVITATION_TTL = timedelta(days=7)
INVITABLE_ROLES = ("admin", "member")  # owners are made by promotion


@dataclass(frozen=True)
class CreatedInvitation:
    invitation: Invitation
    token: str | None  # only when email is disabled: shown once to the admin
    link: str | None


@dataclass(frozen=True)
class Preview:
    invitation: Invitation
    organization_name: str
    inviter_name: str


async def create_invitation(
    session: AsyncSession,
    ctx: AuthContext,
    principal: Principal,
    organization_id: str,
    *,
    email: str,
    role: str,
    resend: bool,
) -> CreatedInvitation:
    org, _ = await require_role(session, principal, organization_id, "admin")
    email = validation.clean_email(email)
    normalized = validation.normalize_email(email)
    if role not in INVITABLE_ROLES:
        raise invalid("role", "must be admin or member (owners are made by promotion)")
    now = ctx.clock.now()
    await limits.consume(session, limits.INVITATIONS_PER_ORG, str(org.id), now)
    invitee = await UserRepository(session).get_by_email(normalized)
    if invitee is not None and await MemberRepository(session).role_of(org.id, invitee.id) is not None:
        raise exists("already_member", f"{email} is already a member")
    repo = InvitationRepository(session)
    existing = await repo.get_pending_for_email(org.id, normalized)
    if existing is not None and existing.expires_at <= now:
        await repo.expire(existing.id, now)
        events.invitation_expired(session, existing.id, org.id)
        existing = None
    # With email on, the mailer makes the link token it sends; this one is never shown.
    token = credentials.new_token()
    if existing is not None:
        if not resend:
            raise exists("invitation_exists", f"an invitation for {email} is already pending")
        invitation = await repo.extend(existing.id, now + INVITATION_TTL, credentials.hash_token(token))
    else:
        created = await repo.insert_pending(
            organization_id=org.id,
            email=email,
            email_normalized=normalized,
            role=role,
            token_hash=credentials.hash_token(token),
            inviter_user_id=uuid.UUID(principal.user_id),
            expires_at=now + INVITATION_TTL,
        )
        if created is None:
            raise exists("invitation_exists", f"an invitation for {email} is already pending")
        invitation = created
    events.invitation_created(session, invitation)
    if ctx.mailer.enabled:
        return CreatedInvitation(invitation, None, None)
    return CreatedInvitation(invitation, token, ctx.app_link(f"/invite/{token}"))


async def list_invitations(
    session: AsyncSession, principal: Principal, organization_id: str
) -> list[Invitation]:
    org, _ = await get_visible(session, principal, organization_id)
    return await InvitationRepository(session).list_for_organization(org.id)


async def cancel_invitation(
    session: AsyncSession, ctx: AuthContext, principal: Principal, organization_id: str, invitation_id: str
) -> Invitation | Refused:
    org, _ = await require_role(session, principal, organization_id, "admin")
    repo = InvitationRepository(session)
    invitation = await repo.get(org.id, validation.parse_id(invitation_id, "invitation"))
    if invitation is None:
        raise not_found("invitation")
    now = ctx.clock.now()
    updated = await repo.transition(invitation.id, "canceled", now, uuid.UUID(principal.user_id))
    if updated is None:
        return await _not_pending(session, ctx, invitation.id, invitation.organization_id)
    events.invitation_canceled(session, updated)
    return updated


async def preview_invitation(session: AsyncSession, ctx: AuthContext, token: str) -> Preview | Refused:
    found = await InvitationRepository(session).preview(credentials.hash_token(token))
    if found is None:
        raise not_found("invitation")
    invitation, org_name, inviter_name = found
    if invitation.status != "pending" or invitation.expires_at <= ctx.clock.now():
        return await _not_pending(session, ctx, invitation.id, invitation.organization_id)
    return Preview(invitation, org_name, inviter_name or "")


async def accept_invitation(
    session: AsyncSession, ctx: AuthContext, principal: Principal, token: str
) -> tuple[Member, User] | Refused:
    invitation, user = await _invitation_for_invitee(session, principal, token)
    user_id = user.id
    repo = InvitationRepository(session)
    updated = await repo.transition(invitation.id, "accepted", ctx.clock.now(), user_id)
    members = MemberRepository(session)
    if updated is None:
        current = await repo.get_by_token_hash(credentials.hash_token(token))
        if current is not None and current.status == "accepted" and current.responded_by_user_id == user_id:
            existing = await members.get_by_user(current.organization_id, user_id)
            if existing is not None:  # the same invitee, twice (two tabs): same membership
                return existing, user
        return await _not_pending(session, ctx, invitation.id, invitation.organization_id)
    member = await members.insert(updated.organization_id, user_id, updated.role)
    if member is None:
        member = await members.get_by_user(updated.organization_id, user_id)
        assert member is not None
    else:
        member_events.member_added(session, member.organization_id, user_id, member.role)
    events.invitation_accepted(session, updated, user_id)
    if principal.credential_id and principal.kind is PrincipalKind.USER:
        await activate_organization(
            session, uuid.UUID(principal.credential_id), user_id, updated.organization_id
        )
    return member, user


async def reject_invitation(
    session: AsyncSession, ctx: AuthContext, principal: Principal, token: str
) -> Invitation | Refused:
    invitation, user = await _invitation_for_invitee(session, principal, token)
    user_id = user.id
    repo = InvitationRepository(session)
    updated = await repo.transition(invitation.id, "rejected", ctx.clock.now(), user_id)
    if updated is None:
        current = await repo.get_by_token_hash(credentials.hash_token(token))
        if current is not None and current.status == "rejected" and current.responded_by_user_id == user_id:
            return current
        return await _not_pending(session, ctx, invitation.id, invitation.organization_id)
    events.invitation_rejected(session, updated)
    return updated


async def _invitation_for_invitee(
    session: AsyncSession, principal: Principal, token: str
) -> tuple[Invitation, User]:
    if principal.kind is not PrincipalKind.USER or principal.impersonator_user_id:
        raise forbidden("an invitation is answered by its invitee, signed in")
    invitation = await InvitationRepository(session).get_by_token_hash(credentials.hash_token(token))
    if invitation is None:
        raise not_found("invitation")
    user_id = uuid.UUID(principal.user_id)
    user = await UserRepository(session).get(user_id)
    # The mailbox the link was sent to is the proof: the invitee's email must be that one.
    if user is None or user.email_normalized != invitation.email_normalized:
        raise InvitationEmailMismatch()
    return invitation, user


async def _not_pending(
    session: AsyncSession, ctx: AuthContext, invitation_id: uuid.UUID, organization_id: uuid.UUID
) -> Refused:
    """Why a guarded transition found nothing to do. A pending invitation past its expiry
    becomes `expired` here (lazily), and that change commits with the refusal."""
    now = ctx.clock.now()
    repo = InvitationRepository(session)
    if await repo.expire(invitation_id, now):
        events.invitation_expired(session, invitation_id, organization_id)
        return Refused(_expired())
    current = await repo.get(organization_id, invitation_id)
    status = current.status if current else "unknown"
    if status == "expired":
        return Refused(_expired())
    return Refused(conflict("invitation_not_pending", f"this invitation was already {status}", status=status))


def _expired() -> FailedPrecondition:
    return conflict("invitation_expired", "this invitation has expired; ask for a new one")


async def expire_due(session: AsyncSession, now: datetime, limit: int = 500) -> int:
    """The sweeper's step: overdue pending invitations become `expired`, with their events."""
    rows = await InvitationRepository(session).claim_expired(now, limit)
    for invitation_id, organization_id in rows:
        events.invitation_expired(session, invitation_id, organization_id)
    return len(rows)
