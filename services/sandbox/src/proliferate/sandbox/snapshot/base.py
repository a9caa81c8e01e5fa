"""Base snapshots (sandbox-provider.md §4.3, §5.5): one build per version key.

The `base` artifact in `creating` is the build's lock (partial unique index): a second
caller for the same key waits on it instead of starting another build. The build sandbox
sees no organization data and is terminated in every case.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from proliferate.agent_contract import base_layer_files
from proliferate.kit.ids import uuid7
from proliferate.kit.logs import get_logger
from proliferate.sandbox.context import SandboxContext
from proliferate.sandbox.errors import (
    CapabilityNotSupported,
    EnsureTimedOut,
    SnapshotFailed,
    VersionKeyStale,
)
from proliferate.sandbox.models import SnapshotArtifact
from proliferate.sandbox.providers.base import (
    ArtifactKind,
    CreateRequest,
    FileWrite,
    ProviderError,
    ProviderSandbox,
    SandboxProvider,
)
from proliferate.sandbox.redaction import redact
from proliferate.sandbox.sandbox import home, lifecycle
from proliferate.sandbox.sandbox.repository import SandboxRepository
from proliferate.sandbox.snapshot import events
from proliferate.sandbox.snapshot.repository import ArtifactRepository
from proliferate.sandbox.snapshot.version import version_key
from sqlalchemy.exc import IntegrityError

log = get_logger("proliferate.sandbox.base_snapshot")

BUILD_DEADLINE_S = 25 * 60
WAIT_POLL_S = 2.0


@dataclass(frozen=True)
class BaseSnapshotSpec:
    supported: bool
    version_key: str
    provider_app: str


class BaseSnapshotService:
    def __init__(self, ctx: SandboxContext, *, wait_poll_s: float = WAIT_POLL_S) -> None:
        self.ctx = ctx
        self.wait_poll_s = wait_poll_s

    def describe(self, provider_name: str) -> BaseSnapshotSpec:
        provider = self.ctx.providers.get(provider_name)
        return BaseSnapshotSpec(
            supported=provider.supports_base_snapshots,
            version_key=self.current_key(provider),
            provider_app=provider.namespace,
        )

    def current_key(self, provider: SandboxProvider) -> str:
        return version_key(provider.kind.value, self.ctx.settings.sandbox_image_version)

    async def create(self, provider_name: str, key: str) -> uuid.UUID:
        provider = self.ctx.providers.get(provider_name)
        if not provider.supports_base_snapshots:
            raise CapabilityNotSupported(f"{provider_name} has no base snapshots", provider=provider_name)
        if key != self.current_key(provider):
            raise VersionKeyStale(version_key=self.current_key(provider))
        deadline = time.monotonic() + BUILD_DEADLINE_S
        while True:
            claimed = await self._claim(provider, key)
            if isinstance(claimed, SnapshotArtifact):
                return await self._build(provider, claimed)
            if claimed is not None:
                return claimed
            if time.monotonic() > deadline:
                raise EnsureTimedOut("the base snapshot build did not finish in time")
            await asyncio.sleep(self.wait_poll_s)

    async def _claim(self, provider: SandboxProvider, key: str) -> SnapshotArtifact | uuid.UUID | None:
        """The available artifact's id; None while another build runs; or a new `creating` row."""
        try:
            async with self.ctx.db.unit_of_work() as session:
                repo = ArtifactRepository(session)
                existing = await repo.base_in_flight(provider.kind.value, provider.namespace, key)
                if existing is not None:
                    if existing.status == "available":
                        return existing.id
                    if existing.created_at < datetime.now(UTC) - timedelta(seconds=BUILD_DEADLINE_S + 60):
                        await repo.transition(existing.id, ("creating",), "failed", error="abandoned build")
                        return None
                    return None
                return await repo.insert(
                    id=uuid7(),
                    organization_id=None,
                    provider=provider.kind.value,
                    provider_namespace=provider.namespace,
                    kind="base",
                    status="creating",
                    version_key=key,
                    scrubbed=True,
                    repo_commits=[],
                )
        except IntegrityError:
            return None  # a concurrent caller inserted the lock row first

    async def _build(self, provider: SandboxProvider, art: SnapshotArtifact) -> uuid.UUID:
        sandbox_id = uuid7()
        now = datetime.now(UTC)
        op_id = uuid7()
        async with self.ctx.db.unit_of_work() as session:
            row = await SandboxRepository(session).insert(
                id=sandbox_id,
                purpose="base_build",
                provider=provider.kind.value,
                provider_namespace=provider.namespace,
                status="provisioning",
                op_kind="boot",
                op_id=op_id,
                op_expires_at=now + timedelta(seconds=BUILD_DEADLINE_S),
                expires_at=now + timedelta(seconds=BUILD_DEADLINE_S),
                secret_file_paths=[],
                boot_report={},
            )
        ps: ProviderSandbox | None = None
        try:
            ps = await provider.create(
                CreateRequest(
                    sandbox_id=str(sandbox_id),
                    purpose="base_build",
                    timeout_s=BUILD_DEADLINE_S,
                    labels={"proliferate_sandbox_id": str(sandbox_id)},
                )
            )
            async with self.ctx.db.unit_of_work() as session:
                await lifecycle.to_booting(
                    session, sandbox_id, op_id, provider_sandbox_id=ps.provider_sandbox_id
                )
            base = home.paths(ps)["home"]
            await provider.write_files(
                ps, [FileWrite(f"{base}/{f.path}", f.content, f.mode_bits) for f in base_layer_files()]
            )
            await provider.remove_files(ps, [home.paths(ps)["metadata"]])
            produced = await provider.snapshot(ps, ArtifactKind.FILESYSTEM)
        except ProviderError as exc:
            await self._finish_sandbox(provider, ps, row.id)
            await self._fail(art, exc.message)
            raise SnapshotFailed(f"base snapshot build failed: {exc.message}") from None
        except BaseException:
            await self._finish_sandbox(provider, ps, row.id)
            await self._fail(art, "unexpected error")
            raise
        await self._finish_sandbox(provider, ps, row.id)
        async with self.ctx.db.unit_of_work() as session:
            done = await ArtifactRepository(session).transition(
                art.id,
                ("creating",),
                "available",
                provider_ref=produced.provider_ref,
                size_bytes=produced.size_bytes,
                sha256=produced.sha256,
                expires_at=produced.expires_at,
                available_at=datetime.now(UTC),
            )
            if done is not None:
                events.artifact_created(session, done)
        return art.id

    async def _finish_sandbox(
        self, provider: SandboxProvider, ps: ProviderSandbox | None, sandbox_id: uuid.UUID
    ) -> None:
        """Always terminate the build sandbox (§5.5 step 3); a crash leaves it to the orphan sweep."""
        if ps is not None:
            try:
                await provider.terminate(ps)
            except ProviderError as exc:
                log.warning(
                    "sandbox.base_build_cleanup_failed", sandbox_id=str(sandbox_id), error=exc.message
                )
                return
        async with self.ctx.db.unit_of_work() as session:
            row = await SandboxRepository(session).get_unscoped(sandbox_id)
            if row is None:
                return
            if row.status in ("provisioning", "booting"):
                marked = await SandboxRepository(session).transition(
                    row.id, ("provisioning", "booting"), "terminating", terminate_reason="requested"
                )
                if marked is not None:
                    await lifecycle.to_terminated(session, marked)

    async def _fail(self, art: SnapshotArtifact, message: str) -> None:
        async with self.ctx.db.unit_of_work() as session:
            await ArtifactRepository(session).transition(
                art.id, ("creating",), "failed", error=redact(message)
            )
