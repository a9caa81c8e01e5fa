"""TerminateSandbox (§5.4): idempotent, deferred while an operation holds the lease."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from proliferate.kit.logs import get_logger
from proliferate.sandbox.context import SandboxContext
from proliferate.sandbox.errors import WrongHost
from proliferate.sandbox.models import Sandbox
from proliferate.sandbox.providers.base import ProviderError
from proliferate.sandbox.sandbox import lifecycle
from proliferate.sandbox.sandbox.repository import SandboxRepository

log = get_logger("proliferate.sandbox.terminate")


@dataclass(frozen=True)
class TerminateOutcome:
    accepted: bool
    status: str


def lease_held(row: Sandbox, now: datetime | None = None) -> bool:
    now = now or datetime.now(UTC)
    return row.op_id is not None and row.op_expires_at is not None and row.op_expires_at > now


class TerminateService:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    async def terminate(
        self, organization_id: uuid.UUID | None, sandbox_id: uuid.UUID, reason: str
    ) -> TerminateOutcome:
        async with self.ctx.db.unit_of_work() as session:
            repo = SandboxRepository(session)
            row = (
                await repo.get(organization_id, sandbox_id)
                if organization_id is not None
                else await repo.get_unscoped(sandbox_id)
            )
            if row is None or row.status in ("terminated", "failed"):
                return TerminateOutcome(False, row.status if row is not None else "")
            if row.status == "terminating":
                target = row
            elif lease_held(row):
                deferred = await repo.update_where(
                    row.id,
                    terminate_requested_at=row.terminate_requested_at or datetime.now(UTC),
                    terminate_reason=row.terminate_reason or reason,
                )
                return TerminateOutcome(True, deferred.status if deferred else row.status)
            else:
                marked = await lifecycle.to_terminating(session, row, reason)
                if marked is None:
                    return TerminateOutcome(False, row.status)
                target = marked
        final = await self.finish(target)
        return TerminateOutcome(False, final.status)

    async def finish(self, row: Sandbox) -> Sandbox:
        """terminating → provider terminate (not found = success) → terminated. A provider
        error leaves the row `terminating` for the reaper to retry."""
        if row.provider_sandbox_id:
            try:
                provider = self.ctx.provider_for(row)
                await provider.terminate(self.ctx.handle(row))
            except WrongHost:
                return row  # a replica on its host finishes it
            except ProviderError as exc:
                log.warning("sandbox.terminate_failed", sandbox_id=str(row.id), error=exc.message)
                return row
        async with self.ctx.db.unit_of_work() as session:
            done = await lifecycle.to_terminated(session, row)
        return done or row

    async def run_pending(self, row: Sandbox) -> Sandbox | None:
        """After an operation released its lease: a terminate that waited runs now."""
        if row.terminate_requested_at is None or lease_held(row):
            return None
        async with self.ctx.db.unit_of_work() as session:
            current = await SandboxRepository(session).get_unscoped(row.id, for_update=True)
            if current is None or current.status not in ("ready", "paused", "booting") or lease_held(current):
                return None
            marked = await lifecycle.to_terminating(session, current, current.terminate_reason or "requested")
        return await self.finish(marked) if marked is not None else None
