"""Background work on sandboxes (sandbox-provider.md §5.8): the reaper, the orphan sweep and
usage metering. Each tick runs on one replica (kit.periodic); rows are claimed with
conditional updates, so a second replica would change nothing twice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from proliferate.kit.logs import get_logger
from proliferate.sandbox.context import SandboxContext
from proliferate.sandbox.models import Sandbox
from proliferate.sandbox.providers.base import ProviderError, SandboxProvider
from proliferate.sandbox.sandbox import lifecycle
from proliferate.sandbox.sandbox.repository import SandboxRepository
from proliferate.sandbox.sandbox.terminate import TerminateService
from proliferate.sandbox.usage import metering

log = get_logger("proliferate.sandbox.jobs")


class SandboxJobs:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.terminator = TerminateService(ctx)

    # --- reaper (every 60 s) ----------------------------------------------------------

    async def reap(self) -> None:
        now = datetime.now(UTC)
        await self._expire(now)
        await self._liveness(now)
        await self._limits()
        await self.finish_terminating(now - timedelta(seconds=30))
        await self._abandoned_boots(now)
        await self._deferred(now)
        async with self.ctx.db.unit_of_work() as session:
            await SandboxRepository(session).release_expired_leases(now)

    async def _expire(self, now: datetime) -> None:
        async with self.ctx.db.unit_of_work() as session:
            rows = await SandboxRepository(session).expired(now)
        for row in rows:
            await self.terminator.terminate(row.organization_id, row.id, "expired")

    async def _live_rows(
        self, statuses: tuple[str, ...] = ("booting", "ready", "paused")
    ) -> AsyncIterator[tuple[str, SandboxProvider, list[Sandbox]]]:
        """Per provider, its live rows of this deployment's namespace (providers without any skipped)."""
        for name in self.ctx.providers.names():
            provider = self.ctx.providers.get(name)
            async with self.ctx.db.unit_of_work() as session:
                rows = await SandboxRepository(session).live_with_provider(name)
            rows = [r for r in rows if r.status in statuses and r.provider_namespace == provider.namespace]
            if rows:
                yield name, provider, rows

    async def _liveness(self, now: datetime) -> None:
        """`list_alive` per provider; a listing error marks nothing (§6): a row becomes `lost`
        only after two not-found answers at least `SANDBOX_LOST_CONFIRM_SECONDS` apart."""
        confirm = timedelta(seconds=self.ctx.settings.sandbox_lost_confirm_seconds)
        async for name, provider, rows in self._live_rows():
            try:
                alive = await provider.list_alive([self.ctx.handle(r) for r in rows])
            except ProviderError as exc:
                log.warning("sandbox.reaper_listing_failed", provider=name, error=exc.message)
                continue
            async with self.ctx.db.unit_of_work() as session:
                repo = SandboxRepository(session)
                for row in rows:
                    if str(row.id) in alive:
                        await repo.update_where(row.id, last_seen_alive_at=now, missing_since=None)
                    elif row.status == "booting":
                        continue  # the boot owns it; an abandoned boot is handled below
                    elif row.missing_since is None:
                        await repo.update_where(row.id, Sandbox.missing_since.is_(None), missing_since=now)
                    elif now - row.missing_since >= confirm:
                        current = await repo.get_unscoped(row.id)
                        if current is not None:
                            await lifecycle.to_lost(session, current)

    async def _limits(self) -> None:
        """A ready or paused sandbox over its provider's limits (a local home past
        `SANDBOX_LOCAL_MAX_DISK_MB`) is terminated `limits_exceeded`: it can no longer be
        snapshotted, and the host's disk is shared by every sandbox on it."""
        async for name, provider, rows in self._live_rows(("ready", "paused")):
            try:
                over = await provider.over_limits([self.ctx.handle(r) for r in rows])
            except ProviderError as exc:
                log.warning("sandbox.reaper_limits_failed", provider=name, error=exc.message)
                continue
            for row in rows:
                reason = over.get(str(row.id))
                if reason is not None:
                    log.warning("sandbox.limits_exceeded", sandbox_id=str(row.id), reason=reason)
                    await self.terminator.terminate(row.organization_id, row.id, "limits_exceeded")

    async def finish_terminating(self, older_than: datetime | None = None) -> int:
        """Rows a consumer or a failed call left `terminating`: call the provider, confirm."""
        cutoff = older_than or datetime.now(UTC)
        async with self.ctx.db.unit_of_work() as session:
            rows = await SandboxRepository(session).stuck_terminating(cutoff)
        done = 0
        for row in rows:
            if (await self.terminator.finish(row)).status == "terminated":
                done += 1
        return done

    async def _abandoned_boots(self, now: datetime) -> None:
        async with self.ctx.db.unit_of_work() as session:
            repo = SandboxRepository(session)
            for row in await repo.abandoned_boots(now):
                await lifecycle.to_failed(
                    session, row, code="boot_abandoned", step="lease", message="boot abandoned"
                )

    async def _deferred(self, now: datetime) -> None:
        async with self.ctx.db.unit_of_work() as session:
            rows = await SandboxRepository(session).deferred_terminations(now)
        for row in rows:
            await self.terminator.run_pending(row)

    # --- orphan sweep (every 10 min) --------------------------------------------------

    async def sweep_orphans(self) -> int:
        """Provider sandboxes we created whose row is terminal or missing, older than the
        minimum age, are terminated (half-built sandboxes of crashed replicas, failed boots)."""
        removed = 0
        min_age = timedelta(seconds=self.ctx.settings.sandbox_orphan_min_age_seconds)
        now = datetime.now(UTC)
        for provider in self.ctx.providers:
            try:
                owned = await provider.list_owned()
            except ProviderError as exc:
                log.warning("sandbox.orphan_listing_failed", provider=provider.kind.value, error=exc.message)
                continue
            ids = []
            for ps in owned:
                try:
                    ids.append(uuid.UUID(ps.sandbox_id))
                except ValueError:
                    continue
            async with self.ctx.db.unit_of_work() as session:
                live = await SandboxRepository(session).live_ids(ids)
            for ps in owned:
                if ps.sandbox_id in {str(i) for i in live}:
                    continue
                if ps.created_at is not None and now - ps.created_at < min_age:
                    continue
                try:
                    await provider.terminate(ps)
                    removed += 1
                    log.info(
                        "sandbox.orphan_terminated", provider=provider.kind.value, sandbox_id=ps.sandbox_id
                    )
                except ProviderError as exc:
                    log.warning(
                        "sandbox.orphan_terminate_failed", sandbox_id=ps.sandbox_id, error=exc.message
                    )
        return removed

    # --- usage metering (every 30 s) --------------------------------------------------

    async def meter(self) -> int:
        now = datetime.now(UTC)
        emitted = 0
        async with self.ctx.db.unit_of_work() as session:
            repo = SandboxRepository(session)
            for row in await repo.meterable():
                mark = metering.meter_until(session, row, now)
                if mark is not None:
                    await repo.update_where(
                        row.id, Sandbox.metered_through_at == row.metered_through_at, metered_through_at=mark
                    )
                    emitted += 1
        return emitted
