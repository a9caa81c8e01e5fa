"""Business rules of virtual keys: issue (replacing a session's key), revoke, inspect, budgets."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from proliferate.kit.ids import uuid7
from proliferate.llm_proxy.models import VirtualKey
from proliferate.llm_proxy.virtual_key import events
from proliferate.llm_proxy.virtual_key.errors import InvalidKeyRequest, VirtualKeyNotFound
from proliferate.llm_proxy.virtual_key.repository import VirtualKeyRepository
from proliferate.llm_proxy.virtual_key.secret import hash_key, new_key, prefix_of
from sqlalchemy.ext.asyncio import AsyncSession

MIN_TTL = timedelta(seconds=60)
MAX_TTL = timedelta(days=7)
SERVICE_TTL = timedelta(minutes=15)
MAX_PURPOSE = 64


@dataclass(frozen=True)
class KeyRequest:
    organization_id: uuid.UUID
    scope: str  # session | service
    issued_by: str
    session_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    purpose: str | None = None
    ttl: timedelta | None = None
    max_budget_micros: int | None = None
    budget_source: str = "caller"
    allowed_models: tuple[str, ...] = ()


@dataclass(frozen=True)
class IssuedKey:
    key: VirtualKey
    secret: str  # the plaintext: leaves this service once, in the IssueVirtualKey reply


@dataclass(frozen=True)
class RevokeTarget:
    """Exactly one of them is set."""

    session_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    virtual_key_id: uuid.UUID | None = None


class VirtualKeyService:
    def __init__(self, session_ttl: timedelta, is_model: Callable[[str], bool]) -> None:
        self.session_ttl = session_ttl
        self.is_model = is_model

    def _validate(self, request: KeyRequest) -> timedelta:
        if request.scope == "session" and request.session_id is None:
            raise InvalidKeyRequest("a session-scoped key needs session_id", field="session_id")
        if request.scope == "service" and request.session_id is not None:
            raise InvalidKeyRequest("a service-scoped key has no session_id", field="session_id")
        if request.purpose is not None and (request.scope != "service" or len(request.purpose) > MAX_PURPOSE):
            raise InvalidKeyRequest("purpose is for service keys, at most 64 characters", field="purpose")
        ttl = request.ttl or (self.session_ttl if request.scope == "session" else SERVICE_TTL)
        if not MIN_TTL <= ttl <= MAX_TTL:
            raise InvalidKeyRequest("ttl_seconds must be between 60 and 604800", field="ttl_seconds")
        if request.max_budget_micros is not None and request.max_budget_micros < 0:
            raise InvalidKeyRequest("max_budget_micros must be ≥ 0", field="max_budget_micros")
        unknown = [m for m in request.allowed_models if not self.is_model(m)]
        if unknown:
            raise InvalidKeyRequest(f"unknown model {unknown[0]!r} in allowed_models", field="allowed_models")
        return ttl

    async def issue(self, session: AsyncSession, request: KeyRequest) -> IssuedKey:
        """One transaction: the session's active key is revoked (`replaced`), the new one inserted."""
        ttl = self._validate(request)
        repository = VirtualKeyRepository(session)
        if request.session_id is not None:
            await repository.lock_session(request.session_id)
            replaced = await repository.revoke_where(
                request.organization_id, "replaced", VirtualKey.session_id == request.session_id
            )
            for row in replaced:
                events.virtual_key_revoked(session, row, "replaced")
        secret = new_key()
        key = await repository.insert(
            id=uuid7(),
            organization_id=request.organization_id,
            scope=request.scope,
            session_id=request.session_id,
            run_id=request.run_id,
            purpose=request.purpose,
            key_hash=hash_key(secret),
            key_prefix=prefix_of(secret),
            status="active",
            max_budget_micros=request.max_budget_micros,
            budget_source=request.budget_source,
            allowed_models=list(request.allowed_models) or None,
            expires_at=datetime.now(UTC) + ttl,
            issued_by=request.issued_by,
        )
        events.virtual_key_issued(session, key)
        return IssuedKey(key=key, secret=secret)

    async def revoke(
        self, session: AsyncSession, organization_id: uuid.UUID, target: RevokeTarget, reason: str
    ) -> int:
        """Revoke the active keys of a session, a run or one key; 0 when already revoked."""
        if target.session_id is not None:
            condition = VirtualKey.session_id == target.session_id
        elif target.run_id is not None:
            condition = VirtualKey.run_id == target.run_id
        elif target.virtual_key_id is not None:
            condition = VirtualKey.id == target.virtual_key_id
        else:
            raise InvalidKeyRequest("one of session_id, run_id or virtual_key_id is required", field="target")
        return await self._revoke(session, organization_id, reason, condition)

    async def revoke_organization(self, session: AsyncSession, organization_id: uuid.UUID) -> int:
        return await self._revoke(session, organization_id, "org_deleted")

    async def _revoke(
        self, session: AsyncSession, organization_id: uuid.UUID, reason: str, *conditions: object
    ) -> int:
        rows = await VirtualKeyRepository(session).revoke_where(organization_id, reason, *conditions)
        for row in rows:
            events.virtual_key_revoked(session, row, reason)
        return len(rows)

    async def get(self, session: AsyncSession, organization_id: uuid.UUID, key_id: uuid.UUID) -> VirtualKey:
        key = await VirtualKeyRepository(session).get(organization_id, key_id)
        if key is None:
            raise VirtualKeyNotFound()
        return key

    async def raise_budgets(
        self, session: AsyncSession, organization_id: uuid.UUID, llm_budget_micros: int
    ) -> int:
        return await VirtualKeyRepository(session).raise_billing_budgets(
            organization_id, max(llm_budget_micros, 0)
        )

    async def expire_due(self, session: AsyncSession) -> int:
        return await VirtualKeyRepository(session).expire_due()
