"""Members: list, role change, removal, leave (auth.md §5.7). Every change of one
organization's memberships runs under that organization's row lock, so the last-owner guard
holds under concurrency."""

from __future__ import annotations

import uuid

from proliferate.auth import validation
from proliferate.auth.errors import conflict, forbidden, invalid, not_found
from proliferate.auth.member import events
from proliferate.auth.member.repository import MemberRepository
from proliferate.auth.models import Member, Organization, User
from proliferate.auth.organization.repository import OrganizationRepository
from proliferate.auth.organization.service import get_visible
from proliferate.auth.roles import ROLES
from proliferate.auth.user.repository import UserRepository
from proliferate.kit.principal import Principal
from sqlalchemy.ext.asyncio import AsyncSession


async def list_members(
    session: AsyncSession, principal: Principal, organization_id: str
) -> list[tuple[Member, User]]:
    org, _ = await get_visible(session, principal, organization_id)
    return await MemberRepository(session).list_with_users(org.id)


async def get_membership(session: AsyncSession, user_id: str, organization_id: str) -> str:
    role = await MemberRepository(session).role_of(
        validation.parse_id(organization_id, "organization"), validation.parse_id(user_id, "member")
    )
    if role is None:
        raise not_found("member")
    return role


async def _locked(
    session: AsyncSession, principal: Principal, organization_id: str
) -> tuple[Organization, str]:
    """The organization, locked, and the caller's role read under the lock."""
    org, _ = await get_visible(session, principal, organization_id)
    locked = await OrganizationRepository(session).get_for_update(org.id)
    role = await MemberRepository(session).role_of(org.id, uuid.UUID(principal.user_id))
    if locked is None or role is None:
        raise not_found("organization")
    return locked, role


async def _target(session: AsyncSession, org: Organization, member_id: str) -> Member:
    member = await MemberRepository(session).get(org.id, validation.parse_id(member_id, "member"))
    if member is None:
        raise not_found("member")
    return member


async def _guard_owners(
    session: AsyncSession, org: Organization, member: Member, new_role: str | None
) -> None:
    """Refuse to leave the organization without an owner, or the personal owner without theirs."""
    if org.is_personal and member.user_id == org.personal_owner_user_id:
        raise conflict("personal_org", "the owner of a personal organization stays its owner")
    demoted = member.role == "owner" and new_role != "owner"
    if demoted and await MemberRepository(session).count_owners(org.id) <= 1:
        raise conflict("last_owner", "an organization keeps at least one owner: promote another first")


async def update_member_role(
    session: AsyncSession, principal: Principal, organization_id: str, member_id: str, role: str
) -> tuple[Member, User | None]:
    if role not in ROLES:
        raise invalid("role", "must be owner, admin or member")
    org, caller_role = await _locked(session, principal, organization_id)
    member = await _target(session, org, member_id)
    old_role = member.role
    if old_role != role:
        # The invariant is checked first: of two owners demoting each other at once, the
        # second (already demoted) sees `last_owner`, which says what happened.
        await _guard_owners(session, org, member, role)
    if caller_role != "owner":
        raise forbidden("only owners change roles")
    if old_role != role:
        await MemberRepository(session).set_role(org.id, member.id, role)
        events.member_updated(session, org.id, member.user_id, old_role, role)
        await session.refresh(member)
    return member, await UserRepository(session).get(member.user_id)


async def remove_member(
    session: AsyncSession, principal: Principal, organization_id: str, member_id: str
) -> None:
    org, caller_role = await _locked(session, principal, organization_id)
    member = await _target(session, org, member_id)
    await _guard_owners(session, org, member, None)
    if caller_role != "owner":
        raise forbidden("only owners remove members")
    await MemberRepository(session).delete(org.id, member.id)
    events.member_removed(session, org.id, member.user_id)


async def leave_organization(session: AsyncSession, principal: Principal, organization_id: str) -> None:
    org, _ = await _locked(session, principal, organization_id)
    member = await MemberRepository(session).get_by_user(org.id, uuid.UUID(principal.user_id))
    if member is None:
        raise not_found("organization")
    await _guard_owners(session, org, member, None)
    await MemberRepository(session).delete(org.id, member.id)
    events.member_removed(session, org.id, member.user_id)
