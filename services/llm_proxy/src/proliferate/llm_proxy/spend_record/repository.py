"""Every SQL statement on `spend_records`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from proliferate.kit.db import for_organization
from proliferate.llm_proxy.models import SpendRecord
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

TERMINAL_FIELDS = (
    "routed_model",
    "status",
    "http_status",
    "error_code",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_micros",
    "usage_estimated",
    "first_byte_at",
    "ended_at",
)


# Batched writes take one array per column (`unnest`): one fixed statement whatever the
# batch size, so neither SQLAlchemy nor psycopg re-parses a query per batch.
_TYPES = {
    "request_id": "uuid",
    "virtual_key_id": "uuid",
    "organization_id": "uuid",
    "session_id": "uuid",
    "run_id": "uuid",
    "api": "text",
    "requested_model": "text",
    "routed_model": "text",
    "stream": "boolean",
    "status": "text",
    "http_status": "integer",
    "error_code": "text",
    "prompt_tokens": "integer",
    "completion_tokens": "integer",
    "cache_read_tokens": "integer",
    "cache_write_tokens": "integer",
    "cost_micros": "bigint",
    "usage_estimated": "boolean",
    "started_at": "timestamptz",
    "first_byte_at": "timestamptz",
    "ended_at": "timestamptz",
}
_NAMES = ", ".join(_TYPES)
_ARRAYS = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _TYPES.items())
# Built from the constant column table above only; every value is a bound array parameter.
_INSERT_MANY = f"INSERT INTO spend_records ({_NAMES}) SELECT * FROM unnest({_ARRAYS})"  # noqa: S608
_INSERT_IN_FLIGHT = sa.text(_INSERT_MANY + " ON CONFLICT (request_id) DO NOTHING")
_FINALIZE_MANY = sa.text(
    _INSERT_MANY
    + " ON CONFLICT (request_id) DO UPDATE SET "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name in TERMINAL_FIELDS)
    + " WHERE spend_records.status = 'in_flight' RETURNING request_id"
)


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in _TYPES}


class SpendRecordRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_in_flight(self, values: dict[str, Any]) -> None:
        """The `in_flight` row; a finalization that got there first wins."""
        await self.session.execute(
            pg_insert(SpendRecord).values(**values, status="in_flight").on_conflict_do_nothing()
        )

    async def finalize(self, values: dict[str, Any]) -> bool:
        """Write the terminal row unless the request already finalized. True if this call did."""
        insert = pg_insert(SpendRecord).values(**values)
        stmt = insert.on_conflict_do_update(
            index_elements=[SpendRecord.request_id],
            set_={name: getattr(insert.excluded, name) for name in TERMINAL_FIELDS},
            where=SpendRecord.status == "in_flight",
        ).returning(SpendRecord.request_id)
        return (await self.session.execute(stmt)).first() is not None

    async def insert_in_flight_many(self, rows: list[dict[str, Any]]) -> None:
        await self.session.execute(_INSERT_IN_FLIGHT, _columns(rows))

    async def finalize_many(self, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
        """Terminal rows for many requests (distinct ids); the ids this call finalized."""
        return set((await self.session.execute(_FINALIZE_MANY, _columns(rows))).scalars())

    async def in_flight_before(self, cutoff: datetime, limit: int) -> Sequence[SpendRecord]:
        """Requests a dead replica left `in_flight`, locked for this sweeper only."""
        stmt = (
            sa.select(SpendRecord)
            .where(SpendRecord.status == "in_flight", SpendRecord.started_at < cutoff)
            .order_by(SpendRecord.started_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def totals(
        self,
        organization_id: uuid.UUID,
        *,
        session_id: uuid.UUID | None = None,
        run_id: uuid.UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Sequence[Any]:
        """Sums of finalized records per requested model."""
        columns = (
            SpendRecord.requested_model,
            sa.func.coalesce(sa.func.sum(SpendRecord.cost_micros), 0).label("cost_micros"),
            sa.func.coalesce(sa.func.sum(SpendRecord.prompt_tokens), 0).label("prompt_tokens"),
            sa.func.coalesce(sa.func.sum(SpendRecord.completion_tokens), 0).label("completion_tokens"),
            sa.func.coalesce(sa.func.sum(SpendRecord.cache_read_tokens), 0).label("cache_read_tokens"),
            sa.func.coalesce(sa.func.sum(SpendRecord.cache_write_tokens), 0).label("cache_write_tokens"),
            sa.func.count().label("request_count"),
        )
        query = cast("sa.Select[Any]", sa.select(*columns))
        stmt = for_organization(query, SpendRecord.organization_id, organization_id)
        stmt = stmt.where(SpendRecord.status != "in_flight")
        if session_id is not None:
            stmt = stmt.where(SpendRecord.session_id == session_id)
        if run_id is not None:
            stmt = stmt.where(SpendRecord.run_id == run_id)
        if since is not None:
            stmt = stmt.where(SpendRecord.started_at >= since)
        if until is not None:
            stmt = stmt.where(SpendRecord.started_at < until)
        stmt = stmt.group_by(SpendRecord.requested_model).order_by(SpendRecord.requested_model)
        rows: Sequence[Any] = (await self.session.execute(stmt)).all()
        return rows

    async def delete_started_before(self, before: datetime) -> int:
        result = await self.session.execute(
            sa.delete(SpendRecord).where(SpendRecord.started_at < before, SpendRecord.status != "in_flight")
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def retention_cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)
