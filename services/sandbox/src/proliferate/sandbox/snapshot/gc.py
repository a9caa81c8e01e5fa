"""Artifact GC (every 5 min, §5.8): `deleting` → provider delete → `deleted`; `available`
past the provider's retention → `expired`; a capture that never finished → `failed`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from proliferate.kit.logs import get_logger
from proliferate.sandbox.context import SandboxContext
from proliferate.sandbox.errors import ProviderDisabled
from proliferate.sandbox.providers.base import ArtifactKind, ArtifactRef, ProviderError
from proliferate.sandbox.snapshot import events
from proliferate.sandbox.snapshot.repository import ArtifactRepository

log = get_logger("proliferate.sandbox.gc")


class ArtifactGC:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    async def run(self) -> int:
        now = datetime.now(UTC)
        async with self.ctx.db.unit_of_work() as session:
            repo = ArtifactRepository(session)
            await repo.expire_past(now)
            stale = timedelta(seconds=self.ctx.settings.sandbox_operation_lease_seconds * 2)
            await repo.stale_creating(now - stale)
        deleted = 0
        async with self.ctx.db.unit_of_work() as session:
            repo = ArtifactRepository(session)
            for art in await repo.claim_deleting():
                try:
                    provider = self.ctx.providers.get(art.provider)
                    if art.provider_ref and provider.namespace == art.provider_namespace:
                        await provider.delete_artifact(
                            ArtifactRef(str(art.id), ArtifactKind(art.kind), art.provider_ref, art.sha256)
                        )
                except (ProviderError, ProviderDisabled) as exc:
                    log.warning(
                        "sandbox.artifact_delete_failed", artifact_id=str(art.id), error=str(exc)[:300]
                    )
                    continue
                done = await repo.transition(art.id, ("deleting",), "deleted", deleted_at=now)
                if done is not None:
                    events.artifact_deleted(session, done)
                    deleted += 1
        return deleted
