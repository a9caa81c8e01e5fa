"""Business rules of spend: the in-flight row, exactly-once finalization, totals, the sweeper."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from proliferate.llm_proxy.model_route.catalog import Price, Usage
from proliferate.llm_proxy.models import VirtualKey
from proliferate.llm_proxy.spend_record import events
from proliferate.llm_proxy.spend_record.errors import RunNotFound, SessionNotFound
from proliferate.llm_proxy.spend_record.repository import SpendRecordRepository
from proliferate.llm_proxy.virtual_key.repository import VirtualKeyRepository
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass
class SpendRecordDraft:
    """A request's record as the edge builds it: `in_flight` values first, terminal ones at the end."""

    request_id: uuid.UUID
    virtual_key_id: uuid.UUID
    organization_id: uuid.UUID
    session_id: uuid.UUID | None
    run_id: uuid.UUID | None
    api: str
    requested_model: str
    routed_model: str | None
    stream: bool
    started_at: datetime
    status: str = "in_flight"
    http_status: int | None = None
    error_code: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_micros: int = 0
    usage_estimated: bool = False
    first_byte_at: datetime | None = None
    ended_at: datetime | None = None

    def row(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies every value, and this runs for every request.
        values = {name: getattr(self, name) for name in _COLUMNS}
        values.update(
            prompt_tokens=self.usage.prompt_tokens,
            completion_tokens=self.usage.completion_tokens,
            cache_read_tokens=self.usage.cache_read_tokens,
            cache_write_tokens=self.usage.cache_write_tokens,
        )
        return values


_COLUMNS = tuple(f.name for f in fields(SpendRecordDraft) if f.name != "usage")


@dataclass(frozen=True)
class Finalized:
    applied: bool  # False: the request had already finalized (a replay changes nothing)
    spend_after: int | None  # the key's spend_micros after this request


async def record_in_flight(session: AsyncSession, draft: SpendRecordDraft) -> None:
    values = draft.row()
    values.pop("status")
    await SpendRecordRepository(session).insert_in_flight(values)


async def finalize(session: AsyncSession, draft: SpendRecordDraft) -> Finalized:
    """Terminal row + key spend + `spend.recorded`, once per request whatever the retries."""
    row = draft.row()
    if not await SpendRecordRepository(session).finalize(row):
        return Finalized(applied=False, spend_after=None)
    spend_after = await VirtualKeyRepository(session).add_spend(draft.virtual_key_id, draft.cost_micros)
    if draft.cost_micros > 0 or draft.usage.any_tokens:
        events.spend_recorded(session, row)
    return Finalized(applied=True, spend_after=spend_after)


async def write_batch(
    session: AsyncSession, in_flight: list[SpendRecordDraft], finals: list[SpendRecordDraft]
) -> dict[uuid.UUID, int]:
    """Many requests' rows in one transaction (group commit); each key's spend after it.

    Same rules as `finalize`, row for row: a request already finalized changes nothing.
    """
    records = SpendRecordRepository(session)
    final_ids = {d.request_id for d in finals}
    starts = [d.row() for d in in_flight if d.request_id not in final_ids]
    if starts:
        for row in starts:
            row["status"] = "in_flight"
        await records.insert_in_flight_many(starts)
    unique = list({d.request_id: d for d in reversed(finals)}.values())
    if not unique:
        return {}
    rows = {d.request_id: d.row() for d in unique}
    applied = await records.finalize_many(list(rows.values()))
    charges: dict[uuid.UUID, tuple[int, int]] = {}
    for draft in unique:
        if draft.request_id not in applied:
            continue
        cost, count = charges.get(draft.virtual_key_id, (0, 0))
        charges[draft.virtual_key_id] = (cost + draft.cost_micros, count + 1)
        if draft.cost_micros > 0 or draft.usage.any_tokens:
            events.spend_recorded(session, rows[draft.request_id])
    return await VirtualKeyRepository(session).add_spend_many(charges)


@dataclass(frozen=True)
class SpendTotals:
    model: str
    cost_micros: int
    prompt_tokens: int
    completion_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    request_count: int


async def get_spend(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    session_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[SpendTotals]:
    keys = VirtualKeyRepository(session)
    if session_id is not None and not await keys.exists_for(
        organization_id, VirtualKey.session_id, session_id
    ):
        raise SessionNotFound()
    if run_id is not None and not await keys.exists_for(organization_id, VirtualKey.run_id, run_id):
        raise RunNotFound()
    rows = await SpendRecordRepository(session).totals(
        organization_id, session_id=session_id, run_id=run_id, since=since, until=until
    )
    return [
        SpendTotals(
            model=row.requested_model,
            cost_micros=int(row.cost_micros),
            prompt_tokens=int(row.prompt_tokens),
            completion_tokens=int(row.completion_tokens),
            cache_read_tokens=int(row.cache_read_tokens),
            cache_write_tokens=int(row.cache_write_tokens),
            request_count=int(row.request_count),
        )
        for row in rows
    ]


async def sweep_abandoned(
    session: AsyncSession, cutoff: datetime, price_of: Callable[[str], Price | None], limit: int = 500
) -> Sequence[uuid.UUID]:
    """Rows a dead replica left `in_flight` since before `cutoff` → `abandoned`, billed for the prompt."""
    swept: list[uuid.UUID] = []
    for record in await SpendRecordRepository(session).in_flight_before(cutoff, limit):
        usage = Usage(prompt_tokens=record.prompt_tokens)
        price = price_of(record.requested_model)
        draft = SpendRecordDraft(
            request_id=record.request_id,
            virtual_key_id=record.virtual_key_id,
            organization_id=record.organization_id,
            session_id=record.session_id,
            run_id=record.run_id,
            api=record.api,
            requested_model=record.requested_model,
            routed_model=record.routed_model,
            stream=record.stream,
            started_at=record.started_at,
            status="abandoned",
            usage=usage,
            cost_micros=price.cost_micros(usage) if price is not None else 0,
            usage_estimated=True,
            first_byte_at=record.first_byte_at,
            ended_at=datetime.now(UTC),
        )
        if (await finalize(session, draft)).applied:
            swept.append(record.request_id)
    return swept
