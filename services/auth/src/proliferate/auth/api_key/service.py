"""API keys (auth.md §5.9): created for the caller's active organization, shown once, found
by their public prefix and checked by a constant-time comparison of the secret's hash."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from proliferate.auth import credentials, validation
from proliferate.auth.api_key import events
from proliferate.auth.api_key.repository import ApiKeyRepository
from proliferate.auth.context import AuthContext
from proliferate.auth.errors import conflict, forbidden, invalid, not_found
from proliferate.auth.member.repository import MemberRepository
from proliferate.auth.models import ApiKey
from proliferate.auth.user.repository import UserRepository
from proliferate.kit.errors import PermissionDenied, Unauthenticated
from proliferate.kit.principal import Principal, PrincipalKind
from sqlalchemy.ext.asyncio import AsyncSession

MAX_ACTIVE_PER_USER_AND_ORG = 25
MAX_EXPIRY_DAYS = 365
TOUCH_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    key: str  # the only time the full key exists outside the caller


def _acting_org(principal: Principal) -> uuid.UUID:
    if not principal.organization_id:
        raise not_found("organization")
    return uuid.UUID(principal.organization_id)


async def create_api_key(
    session: AsyncSession, ctx: AuthContext, principal: Principal, *, name: str, expires_in_days: int | None
) -> CreatedKey:
    if principal.kind is not PrincipalKind.USER or principal.impersonator_user_id:
        raise forbidden("API keys are created from a sign-in, not with another key")
    name = name.strip()
    if not 1 <= len(name) <= 64:
        raise invalid("name", "must be 1 to 64 characters")
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise invalid("expires_in_days", f"must be 1 to {MAX_EXPIRY_DAYS}")
    org_id, user_id = _acting_org(principal), uuid.UUID(principal.user_id)
    if await MemberRepository(session).role_of(org_id, user_id) is None:
        raise not_found("organization")
    now = ctx.clock.now()
    repo = ApiKeyRepository(session)
    if await repo.count_active(org_id, user_id, now) >= MAX_ACTIVE_PER_USER_AND_ORG:
        raise conflict(
            "api_key_limit", f"at most {MAX_ACTIVE_PER_USER_AND_ORG} active keys per person and organization"
        )
    key, prefix, secret = credentials.new_api_key()
    api_key = await repo.insert(
        organization_id=org_id,
        user_id=user_id,
        name=name,
        prefix=prefix,
        secret_hash=credentials.hash_token(secret),
        start=key[:8],
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    events.api_key_created(session, api_key)
    return CreatedKey(api_key, key)


async def list_api_keys(session: AsyncSession, principal: Principal) -> list[ApiKey]:
    """The caller's keys in the acting organization; an owner sees every key of it."""
    org_id = _acting_org(principal)
    role = await MemberRepository(session).role_of(org_id, uuid.UUID(principal.user_id))
    if role is None:
        raise not_found("organization")
    return await ApiKeyRepository(session).list_for_organization(
        org_id, None if role == "owner" else uuid.UUID(principal.user_id)
    )


async def revoke_api_key(
    session: AsyncSession, ctx: AuthContext, principal: Principal, api_key_id: str
) -> ApiKey:
    org_id, user_id = _acting_org(principal), uuid.UUID(principal.user_id)
    repo = ApiKeyRepository(session)
    key = await repo.get(org_id, validation.parse_id(api_key_id, "api_key"))
    role = await MemberRepository(session).role_of(org_id, user_id)
    if key is None or role is None:
        raise not_found("api_key")
    if key.user_id != user_id and role != "owner":
        raise forbidden("only the key's owner or an organization owner revokes it")
    if await repo.revoke(org_id, key.id, ctx.clock.now()):
        events.api_key_revoked(session, key)
    refreshed = await repo.get(org_id, key.id)
    assert refreshed is not None
    return refreshed


async def authenticate_api_key(
    session: AsyncSession, ctx: AuthContext, presented: str, requested_organization_id: str
) -> Principal:
    parts = credentials.split_api_key(presented)
    repo = ApiKeyRepository(session)
    key = await repo.get_by_prefix(parts[0]) if parts else None
    now = ctx.clock.now()
    if (
        parts is None
        or key is None
        or not credentials.same_hash(credentials.hash_token(parts[1]), key.secret_hash)
        or key.revoked_at is not None
        or (key.expires_at is not None and key.expires_at <= now)
    ):
        raise Unauthenticated("the API key is unknown, expired or revoked")
    # Usable only while its user is a member of its organization (re-checked on every use).
    role = await MemberRepository(session).role_of(key.organization_id, key.user_id)
    user = await UserRepository(session).get(key.user_id)
    if role is None or user is None:
        raise Unauthenticated("the API key's user is no longer a member of its organization")
    if requested_organization_id and requested_organization_id != str(key.organization_id):
        raise PermissionDenied("this API key acts only in its own organization", code="forbidden")
    if key.last_used_at is None or now - key.last_used_at >= TOUCH_AFTER:
        await repo.touch(key.id, now)
    return Principal(
        kind=PrincipalKind.API_KEY,
        user_id=str(user.id),
        organization_id=str(key.organization_id),
        role=role,
        credential_id=str(key.id),
        email=user.email,
    )
