"""Periodic jobs: each tick runs on exactly one replica.

A replica claims a tick with one atomic upsert on the service's `periodic_jobs` row; the
others see no row returned and skip it. Nothing is held across ticks, so a replica that
dies mid-job only delays the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from proliferate.kit.db import Database, periodic_jobs_table
from proliferate.kit.ids import uuid7
from proliferate.kit.logs import get_logger, redact
from sqlalchemy.dialects.postgresql import insert as pg_insert

log = get_logger("proliferate.kit.periodic")


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    interval_seconds: float
    run: Callable[[], Awaitable[None]]
    jitter_seconds: float = 0.0


@dataclass
class PeriodicRunner:
    db: Database
    jobs: tuple[PeriodicJob, ...]
    holder: str = field(default_factory=lambda: str(uuid7()))
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        if not self.jobs:
            return
        await asyncio.gather(*(self._loop(job) for job in self.jobs))

    def stop(self) -> None:
        self._stopping.set()

    async def _loop(self, job: PeriodicJob) -> None:
        while not self._stopping.is_set():
            try:
                if await self.claim(job):
                    await job.run()
                    await self._finished(job)
            except Exception as exc:
                log.warning(
                    "periodic_job_failed", job=job.name, error=redact(f"{type(exc).__name__}: {exc}")[:500]
                )
            wait = job.interval_seconds + random.uniform(0, job.jitter_seconds)  # noqa: S311 - spreading load
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=wait)

    async def claim(self, job: PeriodicJob) -> bool:
        """True if this replica won the current tick of `job`."""
        due = sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, job.interval_seconds * 0.9)
        stmt = (
            pg_insert(periodic_jobs_table)
            .values(name=job.name, last_started_at=sa.func.now(), holder=self.holder)
            .on_conflict_do_update(
                index_elements=["name"],
                set_={"last_started_at": sa.func.now(), "holder": self.holder},
                where=periodic_jobs_table.c.last_started_at <= due,
            )
            .returning(periodic_jobs_table.c.name)
        )
        async with self.db.unit_of_work() as session:
            return (await session.execute(stmt)).first() is not None

    async def _finished(self, job: PeriodicJob) -> None:
        async with self.db.unit_of_work() as session:
            await session.execute(
                sa.update(periodic_jobs_table)
                .where(periodic_jobs_table.c.name == job.name, periodic_jobs_table.c.holder == self.holder)
                .values(last_finished_at=sa.func.now())
            )
