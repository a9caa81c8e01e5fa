"""Background work of the llm_proxy service: its consumers and periodic jobs.

The outbox relay runs in every worker (kit.runtime); this file lists what is specific.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from proliferate.kit.bus import ConsumerSpec
from proliferate.kit.logs import get_logger
from proliferate.kit.periodic import PeriodicJob
from proliferate.llm_proxy.org_block import consumers as org_block_consumers
from proliferate.llm_proxy.spend_record import sweeper
from proliferate.llm_proxy.virtual_key import consumers as key_consumers

if TYPE_CHECKING:
    from proliferate.kit.runtime import Runtime
    from proliferate.llm_proxy.bootstrap import Parts, Settings

log = get_logger("proliferate.llm_proxy.worker")


def consumers(parts: Parts) -> list[ConsumerSpec]:
    billing = ConsumerSpec(
        "llm-proxy-billing",
        "PROLIFERATE_BILLING",
        (*org_block_consumers.HANDLERS, key_consumers.credit_handler(parts.keys)),
    )
    return [*key_consumers.consumers(parts.keys), billing]


def jobs(runtime: Runtime[Settings], parts: Parts) -> list[PeriodicJob]:
    settings = runtime.settings
    db = runtime.db

    async def expire_keys() -> None:
        async with db.unit_of_work() as session:
            expired = await parts.keys.expire_due(session)
        if expired:
            log.info("virtual_keys_expired", count=expired)

    async def sweep_abandoned() -> None:
        cutoff = datetime.now(UTC) - timedelta(seconds=settings.llm_proxy_abandon_after_s)
        swept = await sweeper.sweep_abandoned(db, parts.catalog, cutoff)
        if swept:
            log.info("spend_records_abandoned", count=len(swept))

    async def purge() -> None:
        if datetime.now(UTC).hour == sweeper.PURGE_HOUR_UTC:
            await sweeper.purge(db, settings.llm_proxy_spend_retention_days)

    interval = settings.llm_proxy_sweep_interval_s
    return [
        PeriodicJob("llm-proxy-expire-keys", interval, expire_keys, jitter_seconds=interval / 10),
        PeriodicJob("llm-proxy-abandoned-requests", interval, sweep_abandoned, jitter_seconds=interval / 10),
        PeriodicJob("llm-proxy-retention", 3600.0, purge),
    ]
