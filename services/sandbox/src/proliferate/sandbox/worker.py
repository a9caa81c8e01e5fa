"""Background work of the sandbox service: its consumers and periodic jobs.

The outbox relay runs in every worker (kit.runtime); this file lists what is specific.
"""

from __future__ import annotations

from proliferate.kit.bus import ConsumerSpec
from proliferate.kit.periodic import PeriodicJob
from proliferate.sandbox.context import SandboxContext
from proliferate.sandbox.sandbox.consumers import CONSUMERS
from proliferate.sandbox.sandbox.jobs import SandboxJobs
from proliferate.sandbox.snapshot.gc import ArtifactGC


def consumers(ctx: SandboxContext) -> list[ConsumerSpec]:
    return list(CONSUMERS)


def jobs(ctx: SandboxContext) -> list[PeriodicJob]:
    s = ctx.settings
    sandboxes = SandboxJobs(ctx)
    gc = ArtifactGC(ctx)

    async def finish() -> None:
        await sandboxes.finish_terminating()

    async def meter() -> None:
        await sandboxes.meter()

    async def sweep() -> None:
        await sandboxes.sweep_orphans()

    async def collect() -> None:
        await gc.run()

    return [
        PeriodicJob("sandbox-reaper", s.sandbox_reaper_interval_seconds, sandboxes.reap),
        PeriodicJob("sandbox-terminator", min(5.0, s.sandbox_reaper_interval_seconds), finish),
        PeriodicJob("sandbox-usage-metering", s.sandbox_metering_interval_seconds, meter),
        PeriodicJob("sandbox-orphan-sweep", s.sandbox_orphan_sweep_interval_seconds, sweep),
        PeriodicJob("sandbox-artifact-gc", s.sandbox_artifact_gc_interval_seconds, collect),
    ]
