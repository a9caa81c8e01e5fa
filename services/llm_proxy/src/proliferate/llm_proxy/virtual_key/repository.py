"""Every SQL statement on `virtual_keys`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from proliferate.kit.db import for_organization
from proliferate.llm_proxy.models import VirtualKey
from sqlalchemy.ext.asyncio import AsyncSession

_REVOKED = (VirtualKey.id, VirtualKey.organization_id, VirtualKey.session_id)


_ADD_SPEND_MANY = sa.text(
    "UPDATE virtual_keys AS k SET spend_micros = k.spend_micros + c.cost,"
    " request_count = k.request_count + c.n,"
    " last_used_at = CASE WHEN k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute'"
    " THEN now() ELSE k.last_used_at END"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:costs AS bigint[]), CAST(:counts AS bigint[]))"
    " AS c(id, cost, n)"
    " WHERE k.id = c.id RETURNING k.id, k.spend_micros"
)


class VirtualKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_session(self, session_id: uuid.UUID) -> None:
        """Serialize key issues of one session until the transaction ends."""
        await self.session.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(str(session_id), 0)))
        )

    async def insert(self, **values: Any) -> VirtualKey:
        key = VirtualKey(**values)
        self.session.add(key)
        await self.session.flush()
        return key

    async def revoke_where(self, organization_id: uuid.UUID, reason: str, *conditions: Any) -> Sequence[Any]:
        """Revoke the org's active keys matching `conditions`; the revoked (id, org, session) rows."""
        result = await self.session.execute(
            sa.update(VirtualKey)
            .where(VirtualKey.organization_id == organization_id, VirtualKey.status == "active", *conditions)
            .values(status="revoked", revoke_reason=reason, revoked_at=sa.func.now())
            .returning(*_REVOKED)
        )
        return result.all()

    async def get(self, organization_id: uuid.UUID, key_id: uuid.UUID) -> VirtualKey | None:
        stmt = for_organization(sa.select(VirtualKey), VirtualKey.organization_id, organization_id)
        return (await self.session.execute(stmt.where(VirtualKey.id == key_id))).scalar_one_or_none()

    async def exists_for(self, organization_id: uuid.UUID, column: Any, value: uuid.UUID) -> bool:
        stmt = for_organization(sa.select(sa.literal(1)), VirtualKey.organization_id, organization_id)
        return (await self.session.execute(stmt.where(column == value).limit(1))).first() is not None

    async def find_by_hash(self, key_hash: bytes) -> Any | None:
        """The edge's view of a key (the hash is the credential, so no org scope applies)."""
        stmt = sa.select(
            VirtualKey.id,
            VirtualKey.organization_id,
            VirtualKey.session_id,
            VirtualKey.run_id,
            VirtualKey.key_prefix,
            VirtualKey.status,
            VirtualKey.expires_at,
            VirtualKey.max_budget_micros,
            VirtualKey.spend_micros,
            VirtualKey.allowed_models,
        ).where(VirtualKey.key_hash == key_hash)
        return (await self.session.execute(stmt)).first()

    async def add_spend(self, key_id: uuid.UUID, cost_micros: int) -> int | None:
        """Atomically add a finalized request; `last_used_at` moves at most once a minute."""
        stale = sa.or_(
            VirtualKey.last_used_at.is_(None), VirtualKey.last_used_at < sa.func.now() - timedelta(minutes=1)
        )
        result = await self.session.execute(
            sa.update(VirtualKey)
            .where(VirtualKey.id == key_id)
            .values(
                spend_micros=VirtualKey.spend_micros + cost_micros,
                request_count=VirtualKey.request_count + 1,
                last_used_at=sa.case((stale, sa.func.now()), else_=VirtualKey.last_used_at),
            )
            .returning(VirtualKey.spend_micros)
        )
        return result.scalar_one_or_none()

    async def add_spend_many(self, charges: dict[uuid.UUID, tuple[int, int]]) -> dict[uuid.UUID, int]:
        """`add_spend` for many keys at once: key → (cost, requests); each key's spend after."""
        if not charges:
            return {}
        keys = sorted(charges)  # a fixed lock order: concurrent batches never deadlock
        result = await self.session.execute(
            _ADD_SPEND_MANY,
            {"ids": keys, "costs": [charges[k][0] for k in keys], "counts": [charges[k][1] for k in keys]},
        )
        return {row.id: row.spend_micros for row in result}

    async def raise_billing_budgets(self, organization_id: uuid.UUID, llm_budget_micros: int) -> int:
        """`max_budget_micros = spend + budget` for the org's active billing keys; never lowers it."""
        result = await self.session.execute(
            sa.update(VirtualKey)
            .where(
                VirtualKey.organization_id == organization_id,
                VirtualKey.status == "active",
                VirtualKey.budget_source == "billing",
                VirtualKey.max_budget_micros.is_not(None),
            )
            .values(
                max_budget_micros=sa.func.greatest(
                    VirtualKey.max_budget_micros, VirtualKey.spend_micros + llm_budget_micros
                )
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def expire_due(self) -> int:
        result = await self.session.execute(
            sa.update(VirtualKey)
            .where(VirtualKey.status == "active", VirtualKey.expires_at < sa.func.now())
            .values(status="expired")
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def delete_ended_before(self, before: datetime) -> int:
        ended = sa.func.coalesce(VirtualKey.revoked_at, VirtualKey.expires_at)
        result = await self.session.execute(
            sa.delete(VirtualKey).where(VirtualKey.status.in_(("revoked", "expired")), ended < before)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
