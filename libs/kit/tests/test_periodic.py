from __future__ import annotations

import asyncio
from collections.abc import Callable

from proliferate.kit.db import Database
from proliferate.kit.periodic import PeriodicJob, PeriodicRunner


async def noop() -> None:
    return None


class TestPeriodicJobs:
    async def test_one_replica_wins_each_tick(
        self, databases: Callable[[str], Database], platform_db
    ) -> None:
        db = databases("auth")
        other = Database(platform_db.service_url("auth"), "auth")
        job = PeriodicJob("sweep", interval_seconds=60, run=noop)
        try:
            first, second = PeriodicRunner(db, (job,)), PeriodicRunner(other, (job,))
            wins = await asyncio.gather(*(r.claim(job) for r in (first, second, first, second)))
        finally:
            await other.dispose()
        assert sorted(wins) == [False, False, False, True]

    async def test_the_next_tick_is_claimable_after_the_interval(
        self, databases: Callable[[str], Database]
    ) -> None:
        db = databases("auth")
        job = PeriodicJob("fast", interval_seconds=0.3, run=noop)
        runner = PeriodicRunner(db, (job,))
        assert await runner.claim(job) is True
        assert await runner.claim(job) is False
        await asyncio.sleep(0.35)
        assert await runner.claim(job) is True

    async def test_runner_runs_jobs_and_survives_a_failing_one(
        self, databases: Callable[[str], Database]
    ) -> None:
        db = databases("auth")
        runs: list[str] = []

        async def ok() -> None:
            runs.append("ok")

        async def broken() -> None:
            runs.append("broken")
            raise RuntimeError("job failed")

        runner = PeriodicRunner(db, (PeriodicJob("ok", 0.1, ok), PeriodicJob("broken", 0.1, broken)))
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(0.6)
        runner.stop()
        await task
        assert runs.count("ok") >= 2
        assert runs.count("broken") >= 2
