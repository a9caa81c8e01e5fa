"""CaptureSnapshot: scrub → capture → write back (sandbox-provider.md §5.3).

The secret files, the session env and the git credentials are read into memory and removed
before the provider captures anything, so no artifact ever holds them; they are written back
afterwards when the caller asks (`reapply`) or when the capture failed. The operation lease
keeps a second capture, a resume or a terminate from running in between (a terminate waits
and runs when the capture ends).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from proliferate.kit.ids import uuid7
from proliferate.kit.logs import get_logger
from proliferate.sandbox.context import SandboxContext
from proliferate.sandbox.errors import (
    OperationInProgress,
    SandboxNotFound,
    SandboxNotReady,
    SandboxTerminated,
    SnapshotFailed,
)
from proliferate.sandbox.models import Sandbox, SnapshotArtifact
from proliferate.sandbox.providers.base import (
    ArtifactKind,
    FileWrite,
    ProviderArtifact,
    ProviderError,
    ProviderSandbox,
    SandboxProvider,
)
from proliferate.sandbox.redaction import redact
from proliferate.sandbox.sandbox import home, lifecycle
from proliferate.sandbox.sandbox.repository import SandboxRepository
from proliferate.sandbox.sandbox.terminate import TerminateService
from proliferate.sandbox.snapshot import events
from proliferate.sandbox.snapshot.repository import ArtifactRepository

log = get_logger("proliferate.sandbox.capture")

PURPOSE_KINDS: dict[str, tuple[ArtifactKind, ...]] = {
    "save": (ArtifactKind.FILESYSTEM,),
    "migrate": (ArtifactKind.MEMORY, ArtifactKind.FILESYSTEM),
    "pause": (ArtifactKind.MEMORY, ArtifactKind.PAUSE, ArtifactKind.FILESYSTEM),
}
MAX_HELD_FILE = 2 * 1024 * 1024


@dataclass(frozen=True)
class CaptureResult:
    artifact: SnapshotArtifact
    sandbox_retained: bool


class ScrubFailed(Exception):
    pass


@dataclass
class Held:
    """Files removed for the capture, kept in memory only, to write back afterwards."""

    files: list[FileWrite]


class CaptureService:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.terminator = TerminateService(ctx)

    async def capture(
        self,
        organization_id: uuid.UUID,
        sandbox_id: uuid.UUID,
        *,
        purpose: str,
        strict: bool,
        reapply: bool,
        idempotency_key: str | None,
    ) -> CaptureResult:
        op_id = uuid7()
        claimed = await self._claim(organization_id, sandbox_id, purpose, idempotency_key, op_id)
        if isinstance(claimed, CaptureResult):
            return claimed
        row, art, kinds = claimed
        provider = self.ctx.provider_for(row)
        ps = self.ctx.handle(row)
        held = Held([])
        try:
            scrubbed = await self._scrub(provider, ps, row, held, strict=strict)
            commits = await self._repo_commits(provider, ps, row)
            produced = await self._snapshot(provider, ps, kinds)
        except (ScrubFailed, ProviderError, SnapshotFailed) as exc:
            message = redact(str(exc.message if isinstance(exc, ProviderError | SnapshotFailed) else exc))
            await self._write_back(provider, ps, held)
            await self._fail(row, art, op_id, message)
            raise SnapshotFailed(f"capture failed: {message}") from None
        except BaseException:
            await self._write_back(provider, ps, held)
            await self._fail(row, art, op_id, "unexpected error")
            raise
        if reapply and produced.kind is not ArtifactKind.PAUSE:
            await self._write_back(provider, ps, held)
        result = await self._complete(row, art, op_id, produced, scrubbed, commits)
        if reapply and produced.kind is ArtifactKind.PAUSE:
            await self._write_back(provider, ps, held)  # the paused home keeps them (local: host-side)
        return result

    # --- steps ----------------------------------------------------------------------

    async def _claim(
        self,
        organization_id: uuid.UUID,
        sandbox_id: uuid.UUID,
        purpose: str,
        key: str | None,
        op_id: uuid.UUID,
    ) -> CaptureResult | tuple[Sandbox, SnapshotArtifact, tuple[ArtifactKind, ...]]:
        now = datetime.now(UTC)
        async with self.ctx.db.unit_of_work() as session:
            repo = SandboxRepository(session)
            artifacts = ArtifactRepository(session)
            row = await repo.get(organization_id, sandbox_id)
            if row is None:
                raise SandboxNotFound(sandbox_id=str(sandbox_id))
            if key:
                existing = await artifacts.by_idempotency_key(row.id, key)
                if existing is not None and existing.status == "available":
                    return CaptureResult(existing, existing.kind == "pause")
                if existing is not None and existing.status == "creating":
                    raise OperationInProgress("a capture with this key is running")
            if row.status in ("terminating", "terminated", "failed"):
                raise SandboxTerminated(status=row.status)
            if row.status != "ready":
                raise SandboxNotReady(status=row.status)
            provider = self.ctx.provider_for(row)
            kinds = tuple(k for k in PURPOSE_KINDS[purpose] if provider.capabilities.supports(k))
            leased = await repo.acquire_lease(
                row.id, "snapshot", op_id, self.ctx.settings.sandbox_operation_lease_seconds, now
            )
            if leased is None:
                raise OperationInProgress()
            art = await artifacts.insert(
                id=uuid7(),
                organization_id=row.organization_id,
                provider=row.provider,
                provider_namespace=row.provider_namespace,
                kind=kinds[0].value,
                status="creating",
                source_sandbox_id=row.id,
                session_id=row.session_id,
                scrubbed=False,
                repo_commits=[],
                idempotency_key=key or None,
            )
            return leased, art, kinds

    async def _scrub(
        self, provider: SandboxProvider, ps: ProviderSandbox, row: Sandbox, held: Held, *, strict: bool
    ) -> bool:
        """Read then remove every secret-bearing file. STRICT: any error aborts the capture;
        BEST_EFFORT: errors are logged and the artifact is marked `scrubbed=false`."""
        p = home.paths(ps)
        ws = p["workspace"]
        targets = [(f"{ws}/{rel}", 0o600) for rel in row.secret_file_paths]
        targets += [(p["session_env"], 0o600), (p["credentials"], 0o600)]
        ok = True
        for path, mode in targets:
            try:
                content = await provider.read_file(ps, path, MAX_HELD_FILE)
            except ProviderError as exc:
                ok = False
                if strict:
                    raise ScrubFailed(f"could not read a file to scrub: {exc.message}") from None
                log.warning("sandbox.scrub_read_failed", sandbox_id=str(row.id), error=exc.message)
                continue
            if content is not None:
                held.files.append(FileWrite(path, content, mode))
        try:
            await provider.remove_files(ps, [path for path, _ in targets] + [p["legacy_env"]])
        except ProviderError as exc:
            ok = False
            if strict:
                raise ScrubFailed(f"could not remove the scrubbed files: {exc.message}") from None
            log.warning("sandbox.scrub_remove_failed", sandbox_id=str(row.id), error=exc.message)
        return ok

    async def _repo_commits(
        self, provider: SandboxProvider, ps: ProviderSandbox, row: Sandbox
    ) -> list[dict[str, str]]:
        commits = []
        for repo in row.repos:
            path = home.repo_path(ps, repo["workspace_path"])
            try:
                result = await provider.exec(ps, ["git", "-C", path, "rev-parse", "HEAD"], timeout_s=30)
            except ProviderError:
                continue
            if result.ok and result.stdout.strip():
                commits.append(
                    {
                        "repo_id": repo["repo_id"],
                        "workspace_path": repo["workspace_path"],
                        "commit_sha": result.stdout.strip()[:64],
                    }
                )
        return commits

    async def _snapshot(
        self, provider: SandboxProvider, ps: ProviderSandbox, kinds: tuple[ArtifactKind, ...]
    ) -> ProviderArtifact:
        """First supported kind wins; a failure falls through to the next (§5.3 step 2)."""
        errors: list[str] = []
        for kind in kinds:
            try:
                return await provider.snapshot(ps, kind)
            except ProviderError as exc:
                errors.append(f"{kind.value}: {exc.message}")
                log.warning("sandbox.snapshot_kind_failed", kind=kind.value, error=exc.message)
        raise SnapshotFailed("; ".join(errors) or "no snapshot kind is supported")

    async def _write_back(self, provider: SandboxProvider, ps: ProviderSandbox, held: Held) -> None:
        if not held.files:
            return
        try:
            await provider.write_files(ps, held.files)
        except ProviderError as exc:
            log.warning("sandbox.write_back_failed", sandbox_id=ps.sandbox_id, error=exc.message)

    async def _fail(self, row: Sandbox, art: SnapshotArtifact, op_id: uuid.UUID, message: str) -> None:
        async with self.ctx.db.unit_of_work() as session:
            await ArtifactRepository(session).transition(
                art.id, ("creating",), "failed", error=message[:2000], idempotency_key=None
            )
            released = await SandboxRepository(session).release_lease(row.id, op_id)
        if released is not None:
            await self.terminator.run_pending(released)

    async def _complete(
        self,
        row: Sandbox,
        art: SnapshotArtifact,
        op_id: uuid.UUID,
        produced: ProviderArtifact,
        scrubbed: bool,
        commits: list[dict[str, str]],
    ) -> CaptureResult:
        now = datetime.now(UTC)
        async with self.ctx.db.unit_of_work() as session:
            repo = SandboxRepository(session)
            available = await ArtifactRepository(session).transition(
                art.id,
                ("creating",),
                "available",
                kind=produced.kind.value,
                provider_ref=produced.provider_ref,
                size_bytes=produced.size_bytes,
                sha256=produced.sha256,
                expires_at=produced.expires_at,
                scrubbed=scrubbed,
                repo_commits=commits,
                available_at=now,
            )
            assert available is not None
            if produced.kind is ArtifactKind.PAUSE:
                current = await repo.get_unscoped(row.id)
                if current is not None:
                    await lifecycle.to_paused(session, current)
            released = await repo.release_lease(row.id, op_id)
            events.artifact_created(session, available)
        if released is not None:
            await self.terminator.run_pending(released)
        return CaptureResult(available, produced.kind is ArtifactKind.PAUSE)
