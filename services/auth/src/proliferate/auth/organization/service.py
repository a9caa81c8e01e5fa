"""Organizations: personal at sign-up (same transaction, slug retry), team creation, reads
for members only, owner-only changes (auth.md §5.1, §5.5)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from proliferate.auth import validation
from proliferate.auth.clock import Clock
from proliferate.auth.errors import DomainError, exists, forbidden, not_found
from proliferate.auth.member import events as member_events
from proliferate.auth.member.repository import MemberRepository
from proliferate.auth.models import Organization, User
from proliferate.auth.organization import events
from proliferate.auth.organization.repository import OrganizationRepository
from proliferate.auth.rate_limit import service as limits
from proliferate.auth.roles import at_least
from proliferate.auth.sign_in.activation import activate_organization
from proliferate.kit.principal import Principal, PrincipalKind
from sqlalchemy.ext.asyncio import AsyncSession

SLUG_ATTEMPTS = 5
# Domains that name a mail provider, not a company: never suggested as an org's domain.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "yahoo.com",
        "icloud.com",
        "me.com",
        "proton.me",
        "protonmail.com",
        "aol.com",
        "gmx.com",
        "mail.com",
        "yandex.com",
        "localhost",
    }
)


@dataclass(frozen=True)
class OrganizationCreate:
    name: str
    slug: str | None = None


@dataclass(frozen=True)
class OrganizationUpdate:
    name: str | None = None
    slug: str | None = None
    logo_url: str | None = None  # "" clears


async def create_personal_organization(session: AsyncSession, user: User) -> Organization:
    """The user's personal organization and owner membership, in the caller's transaction."""
    base = (validation.slugify(user.name) or "user")[:39].strip("-") or "user"
    slug = f"{base}-{user.id.hex[-8:]}"
    name = f"{user.name[:84]}'s organization"
    repo = OrganizationRepository(session)
    for _ in range(SLUG_ATTEMPTS):
        org = await repo.insert(name=name, slug=slug, created_by=user.id, personal_owner_user_id=user.id)
        if org is not None:
            await _add_owner(session, org, user.id)
            return org
        slug = f"{base}-{secrets.token_hex(3)}"
    # Five collisions in a row means something else is wrong: fail the whole sign-up.
    raise DomainError("could not choose a unique slug for the personal organization")


async def create_organization(
    session: AsyncSession, clock: Clock, principal: Principal, data: OrganizationCreate
) -> Organization:
    user_id = uuid.UUID(principal.user_id)
    name = validation.clean_name(data.name)
    await limits.consume(session, limits.ORGANIZATIONS_PER_USER, str(user_id), clock.now())
    repo = OrganizationRepository(session)
    if data.slug:
        slug = validation.clean_slug(data.slug)
        org = await repo.insert(name=name, slug=slug, created_by=user_id)
        if org is None:
            raise exists("slug_taken", f"the slug {slug!r} is taken")
    else:
        base = (validation.slugify(name) or "org")[:41].strip("-") or "org"
        base = base if len(base) >= 3 else f"{base}-org"
        org = await repo.insert(name=name, slug=base, created_by=user_id)
        for _ in range(SLUG_ATTEMPTS):
            if org is not None:
                break
            org = await repo.insert(name=name, slug=f"{base}-{secrets.token_hex(3)}", created_by=user_id)
        if org is None:
            raise exists("slug_taken", "could not find a free slug; choose one")
    await _add_owner(session, org, user_id)
    if (
        principal.kind is PrincipalKind.USER
        and principal.credential_id
        and not principal.impersonator_user_id
    ):
        # The new organization becomes the active one of the sign-in that created it.
        await activate_organization(session, uuid.UUID(principal.credential_id), user_id, org.id)
    return org


async def _add_owner(session: AsyncSession, org: Organization, user_id: uuid.UUID) -> None:
    events.organization_created(session, org)
    await MemberRepository(session).insert(org.id, user_id, "owner")
    member_events.member_added(session, org.id, user_id, "owner")


async def get_visible(
    session: AsyncSession, principal: Principal, organization_id: str
) -> tuple[Organization, str]:
    """The organization and the caller's role in it; `organization_not_found` for non-members."""
    org_id = validation.parse_id(organization_id, "organization")
    found = await OrganizationRepository(session).get_with_role(org_id, uuid.UUID(principal.user_id))
    if found is None:
        raise not_found("organization")
    return found


async def require_role(
    session: AsyncSession, principal: Principal, organization_id: str, needed: str
) -> tuple[Organization, str]:
    org, role = await get_visible(session, principal, organization_id)
    if not at_least(role, needed):  # type: ignore[arg-type]
        raise forbidden(f"this needs the {needed} role")
    return org, role


async def list_for_user(session: AsyncSession, principal: Principal) -> list[tuple[Organization, str]]:
    return await OrganizationRepository(session).list_for_user(uuid.UUID(principal.user_id))


async def update_organization(
    session: AsyncSession, principal: Principal, organization_id: str, data: OrganizationUpdate
) -> tuple[Organization, str]:
    org, role = await require_role(session, principal, organization_id, "owner")
    values: dict[str, Any] = {}
    if data.name is not None:
        values["name"] = validation.clean_name(data.name)
    if data.slug is not None:
        values["slug"] = validation.clean_slug(data.slug)
    if data.logo_url is not None:
        values["logo_url"] = validation.clean_https_url(data.logo_url, "logo_url")
    changed = [k for k, v in values.items() if getattr(org, k) != v]
    if not changed:
        return org, role
    updated = await OrganizationRepository(session).update(org.id, {k: values[k] for k in changed})
    if updated is None:
        raise exists("slug_taken", f"the slug {values['slug']!r} is taken")
    events.organization_updated(session, updated, changed)
    return updated, role


async def set_allowed_domains(
    session: AsyncSession, principal: Principal, organization_id: str, domains: Sequence[str]
) -> tuple[Organization, str]:
    org, role = await require_role(session, principal, organization_id, "owner")
    cleaned = validation.clean_domains(list(domains))
    if cleaned == sorted(org.allowed_domains):
        return org, role
    updated = await OrganizationRepository(session).update(org.id, {"allowed_domains": cleaned})
    assert updated is not None
    events.organization_updated(session, updated, ["allowed_domains"])
    return updated, role


def domain_suggestions(email: str) -> list[str]:
    domain = email.rpartition("@")[2].strip().lower()
    if not domain or domain in PUBLIC_MAIL_DOMAINS or not validation.DOMAIN_RE.match(domain):
        return []
    return [domain]
