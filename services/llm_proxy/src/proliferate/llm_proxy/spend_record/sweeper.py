"""Periodic clean-up: requests a dead replica left in flight, and old rows past retention."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from proliferate.kit.db import Database
from proliferate.llm_proxy.model_route.catalog import ModelCatalog, Price
from proliferate.llm_proxy.spend_record import service
from proliferate.llm_proxy.spend_record.repository import SpendRecordRepository
from proliferate.llm_proxy.virtual_key.repository import VirtualKeyRepository

PURGE_HOUR_UTC = 3
KEY_RETENTION = timedelta(days=30)


async def sweep_abandoned(db: Database, catalog: ModelCatalog, cutoff: datetime) -> Sequence[uuid.UUID]:
    """`in_flight` since before `cutoff` → `abandoned`, priced from the prompt estimate."""

    def price_of(model: str) -> Price | None:
        route = catalog.resolve(model)
        return route.price if route is not None else None

    async with db.unit_of_work() as session:
        return await service.sweep_abandoned(session, cutoff, price_of)


async def purge(db: Database, retention_days: int) -> tuple[int, int]:
    now = datetime.now(UTC)
    async with db.unit_of_work() as session:
        records = await SpendRecordRepository(session).delete_started_before(
            now - timedelta(days=retention_days)
        )
        keys = await VirtualKeyRepository(session).delete_ended_before(now - KEY_RETENTION)
    return records, keys
