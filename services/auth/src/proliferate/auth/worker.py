"""Background work of the auth service: the mailer consumer and the sweeper.

The outbox relay runs in every worker (kit.runtime); this file lists what is specific.
"""

from __future__ import annotations

from proliferate.auth.context import AuthContext
from proliferate.auth.mail.consumers import mailer_consumer
from proliferate.auth.sweeper.service import INTERVAL_SECONDS, sweep
from proliferate.kit.bus import ConsumerSpec
from proliferate.kit.periodic import PeriodicJob


def consumers(ctx: AuthContext) -> list[ConsumerSpec]:
    return [mailer_consumer(ctx)]


def jobs(ctx: AuthContext) -> list[PeriodicJob]:
    async def run() -> None:
        await sweep(ctx)

    return [PeriodicJob("auth-sweeper", INTERVAL_SECONDS, run, jitter_seconds=30.0)]
