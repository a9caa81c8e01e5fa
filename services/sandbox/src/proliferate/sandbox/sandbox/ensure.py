"""EnsureSandbox: recover, resume or boot the session's sandbox (sandbox-provider.md §5.1).

One live row per session is the lock (partial unique index + `SELECT … FOR UPDATE`): the
caller that inserts the `provisioning` row owns the boot through its operation lease; any
concurrent caller waits for that boot to end and then recovers the same sandbox. Long
provider calls run outside transactions; each state change is its own short one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from proliferate.kit.ids import uuid7
from proliferate.kit.logs import get_logger
from proliferate.sandbox.context import SandboxContext, ref_of
from proliferate.sandbox.errors import (
    ArtifactSessionMismatch,
    BootFailed,
    EnsureTimedOut,
    LocalCapacity,
    PortRangeExhausted,
    ProviderMismatch,
    ProviderUnavailable,
    SandboxNotFound,
    SnapshotMissing,
)
from proliferate.sandbox.models import Sandbox, SnapshotArtifact
from proliferate.sandbox.providers.base import (
    ArtifactKind,
    ArtifactRef,
    ArtifactUnusable,
    CreateRequest,
    FileWrite,
    ProviderError,
    ProviderSandbox,
    SandboxGone,
    SandboxProvider,
)
from proliferate.sandbox.redaction import redact
from proliferate.sandbox.sandbox import boot, home, lifecycle
from proliferate.sandbox.sandbox.boot import BootInputs, BootReport, StepFailed
from proliferate.sandbox.sandbox.repository import SandboxRepository
from proliferate.sandbox.sandbox.schemas import EnsureSpec
from proliferate.sandbox.sandbox.terminate import TerminateService
from proliferate.sandbox.snapshot.repository import ArtifactRepository
from proliferate.sandbox.snapshot.version import version_key
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

log = get_logger("proliferate.sandbox.ensure")

WAIT_POLL_S = 0.5


@dataclass
class EnsureResult:
    row: Sandbox
    recovered: bool = False
    resumed: bool = False
    restore_outcome: str = "fresh"
    fallback_reason: str = ""
    agent_ready: bool = False
    report: BootReport = field(default_factory=BootReport)


@dataclass(frozen=True)
class _Source:
    artifact: SnapshotArtifact | None  # a restore artifact (filesystem/memory) or None
    base: SnapshotArtifact | None
    fallback_reason: str = ""


@dataclass(frozen=True)
class _Claim:
    action: str  # recover | resume | boot | wait
    row: Sandbox | None = None
    op_id: uuid.UUID | None = None
    retired: Sandbox | None = None  # the previous live row a FRESH ensure retired


class EnsureService:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.terminator = TerminateService(ctx)

    # --- entry point ------------------------------------------------------------------

    async def ensure(self, spec: EnsureSpec) -> EnsureResult:
        provider, source = await self._resolve(spec)
        deadline = time.monotonic() + self.settings.sandbox_ensure_deadline_seconds
        fallback_reason = source.fallback_reason
        while True:
            claim = await self._claim(spec, provider)
            if claim.retired is not None:
                await self.terminator.finish(claim.retired)
            if claim.action == "wait":
                if time.monotonic() > deadline:
                    raise EnsureTimedOut()
                await asyncio.sleep(WAIT_POLL_S)
                continue
            assert claim.row is not None
            if claim.action == "recover":
                result = await self._recover(spec, provider, claim.row)
                if result is not None:
                    return result
                continue  # gone: marked lost, boot a new one
            if claim.action == "resume":
                assert claim.op_id is not None
                resumed = await self._resume(spec, provider, claim.row, claim.op_id)
                if resumed is not None:
                    return resumed
                fallback_reason = fallback_reason or "the paused sandbox is gone"
                source = _Source(None, source.base, fallback_reason)
                continue
            assert claim.op_id is not None
            return await self._boot(spec, provider, claim.row, claim.op_id, source)

    # --- provider and source resolution (§5.1 steps 1 and 3) ------------------------

    async def _resolve(self, spec: EnsureSpec) -> tuple[SandboxProvider, _Source]:
        async with self.ctx.db.unit_of_work() as session:
            repo = SandboxRepository(session)
            if await repo.session_of_other_org(spec.organization_id, spec.session_id):
                raise SandboxNotFound("no sandbox of this session in this organization")
            if (
                spec.current_sandbox_id is not None
                and await repo.get(spec.organization_id, spec.current_sandbox_id) is None
            ):
                raise SandboxNotFound(sandbox_id=str(spec.current_sandbox_id))
            prior = await repo.latest_for_session(spec.organization_id, spec.session_id)
            artifact = None
            if spec.restore_artifact_id is not None:
                artifact = await ArtifactRepository(session).get(
                    spec.organization_id, spec.restore_artifact_id
                )
        name = (
            spec.provider
            or (artifact.provider if artifact else None)
            or (prior.provider if prior is not None and prior.status in ("ready", "paused") else None)
        )
        provider = self.ctx.providers.get(name or self.ctx.providers.default)
        live_prior = prior is not None and prior.status in ("provisioning", "booting", "ready", "paused")
        if live_prior and prior is not None and prior.provider != provider.kind.value and not spec.fresh:
            raise ProviderMismatch(f"the session's sandbox runs on {prior.provider}", provider=prior.provider)
        source = await self._source(spec, provider, artifact)
        return provider, source

    async def _source(
        self, spec: EnsureSpec, provider: SandboxProvider, artifact: SnapshotArtifact | None
    ) -> _Source:
        base = await self._base_artifact(provider)
        if spec.restore_artifact_id is None:
            return _Source(None, base)
        problem = self._artifact_problem(spec, provider, artifact)
        if problem is None:
            return _Source(artifact, base)
        if spec.allow_fresh_fallback:
            return _Source(None, base, f"snapshot {problem}")
        raise SnapshotMissing(f"the snapshot is {problem}", detail=problem)

    def _artifact_problem(
        self, spec: EnsureSpec, provider: SandboxProvider, art: SnapshotArtifact | None
    ) -> str | None:
        """None if the artifact can be restored; else not_found | expired | deleted. Raises on
        mismatches, which no fallback may hide."""
        if art is None or art.kind == "base":
            return "not_found"
        if art.provider != provider.kind.value or art.provider_namespace != provider.namespace:
            raise ProviderMismatch(f"the snapshot belongs to provider {art.provider}", provider=art.provider)
        if (art.kind in ("pause", "memory") or not art.scrubbed) and art.session_id != spec.session_id:
            raise ArtifactSessionMismatch()
        if art.status in ("deleting", "deleted"):
            return "deleted"
        now = datetime.now(UTC)
        if art.status == "expired" or (art.expires_at is not None and art.expires_at <= now):
            return "expired"
        if art.status != "available":
            return "not_found"
        return None

    async def _base_artifact(self, provider: SandboxProvider) -> SnapshotArtifact | None:
        key = version_key(provider.kind.value, self.settings.sandbox_image_version)
        async with self.ctx.db.unit_of_work() as session:
            base = await ArtifactRepository(session).newest_base(provider.kind.value, provider.namespace, key)
        if base is None and provider.kind.value == "modal":
            log.info("sandbox.base_snapshot_miss", provider=provider.kind.value, version_key=key)
        return base

    # --- the claim (§5.1 step 2) ----------------------------------------------------

    async def _claim(self, spec: EnsureSpec, provider: SandboxProvider) -> _Claim:
        try:
            async with self.ctx.db.unit_of_work() as session:
                return await self._claim_in(session, spec, provider)
        except IntegrityError:
            return _Claim("wait")  # a racing insert won; it owns the boot

    async def _claim_in(self, session: AsyncSession, spec: EnsureSpec, provider: SandboxProvider) -> _Claim:
        repo = SandboxRepository(session)
        now = datetime.now(UTC)
        row = await repo.live_for_session(spec.organization_id, spec.session_id, for_update=True)
        retired: Sandbox | None = None
        if row is not None and spec.fresh and row.status in ("ready", "paused"):
            retired = await lifecycle.to_terminating(session, row, "requested")
            row = None
        if row is not None:
            if row.status == "ready":
                return _Claim("recover", row)
            if row.status == "paused":
                op_id = uuid7()
                leased = await repo.acquire_lease(
                    row.id, "resume", op_id, self.settings.sandbox_operation_lease_seconds, now
                )
                return _Claim("resume", leased, op_id) if leased is not None else _Claim("wait")
            if row.op_expires_at is not None and row.op_expires_at > now:
                return _Claim("wait")
            # The replica that owned this boot died; the orphan sweep removes what it left.
            await lifecycle.to_failed(
                session, row, code="boot_abandoned", step="lease", message="boot abandoned"
            )
        op_id = uuid7()
        values = await self._placement(repo, provider)
        inserted = await repo.insert(
            id=uuid7(),
            organization_id=spec.organization_id,
            session_id=spec.session_id,
            run_id=spec.run_id,
            purpose="session",
            provider=provider.kind.value,
            provider_namespace=provider.namespace,
            status="provisioning",
            prompt_mode=spec.prompt_mode,
            op_kind="boot",
            op_id=op_id,
            op_expires_at=now + timedelta(seconds=self.settings.sandbox_operation_lease_seconds),
            expires_at=now + timedelta(seconds=spec.timeout_seconds or self.settings.sandbox_timeout_seconds),
            secret_file_paths=[],
            boot_report={},
            **values,
        )
        return _Claim("boot", inserted, op_id, retired)

    async def _placement(self, repo: SandboxRepository, provider: SandboxProvider) -> dict[str, object]:
        placement = provider.placement
        if placement is None:
            return {}
        await repo.lock_host(placement.host_id)
        live = await repo.count_live_on_host(provider.kind.value, placement.host_id)
        if live >= placement.max_sandboxes:
            raise LocalCapacity(f"{live} sandboxes run on this host (limit {placement.max_sandboxes})")
        used = await repo.used_port_bases(placement.host_id)
        for base in range(
            placement.port_low, placement.port_high - placement.block_size + 2, placement.block_size
        ):
            if base not in used and _ports_free(base, placement.block_size):
                return {"host_id": placement.host_id, "port_base": base, "isolation": provider.isolation}
        raise PortRangeExhausted()

    # --- recover and resume ---------------------------------------------------------

    async def _recover(
        self, spec: EnsureSpec, provider: SandboxProvider, row: Sandbox
    ) -> EnsureResult | None:
        try:
            ps = await provider.find(str(row.id), row.provider_sandbox_id)
        except ProviderError as exc:
            raise ProviderUnavailable(exc.message) from exc
        if ps is None:
            async with self.ctx.db.unit_of_work() as session:
                await lifecycle.to_lost(session, row)
            return None
        report = BootReport()
        try:
            endpoints = await provider.endpoints(ps)
            async with report.step("credentials"):
                await self._rewrite_session(spec, provider, ps, row)
        except ProviderError as exc:
            raise ProviderUnavailable(exc.message) from exc
        async with self.ctx.db.unit_of_work() as session:
            updated = await SandboxRepository(session).update_where(
                row.id, opencode_url=endpoints.opencode_url, preview_url=endpoints.preview_url
            )
        ready = (
            await boot.probe_agent(
                endpoints.opencode_url, spec.sandbox_token, self.settings.sandbox_agent_ready_timeout_seconds
            )
            is True
        )
        return EnsureResult(
            updated or row,
            recovered=True,
            restore_outcome=row.restore_outcome or "fresh",
            agent_ready=ready,
            report=report,
        )

    async def _rewrite_session(
        self, spec: EnsureSpec, provider: SandboxProvider, ps: ProviderSandbox, row: Sandbox
    ) -> list[str]:
        """New credentials, secret files and session env (resume, recover): the sandbox token
        and virtual key change at every boot."""
        inp = self._inputs(spec, provider, ps, row, restored=True)
        await boot.write_credentials(inp, spec.repos)
        repo_paths = [home.repo_path(ps, r.workspace_path) for r in spec.repos]
        secret_paths = await boot.write_secret_files(provider, ps, spec.secret_files, repo_paths)
        p = home.paths(ps)
        env = home.session_env(boot.session_env_values(inp, p["workspace"]))
        await provider.write_files(ps, [FileWrite(p["session_env"], env, 0o600)])
        return secret_paths

    async def _resume(
        self, spec: EnsureSpec, provider: SandboxProvider, row: Sandbox, op_id: uuid.UUID
    ) -> EnsureResult | None:
        report = BootReport()
        try:
            async with report.step("resume"):
                ps = await provider.resume(self.ctx.handle(row))
            async with report.step("credentials"):
                secret_paths = await self._rewrite_session(spec, provider, ps, row)
            endpoints = await provider.endpoints(ps)
        except SandboxGone:
            async with self.ctx.db.unit_of_work() as session:
                await lifecycle.to_lost(session, row)
            if not spec.allow_fresh_fallback:
                raise SnapshotMissing("the paused sandbox is gone", detail="not_found") from None
            return None
        except ProviderError as exc:
            async with self.ctx.db.unit_of_work() as session:
                await SandboxRepository(session).release_lease(row.id, op_id)
            raise ProviderUnavailable(exc.message) from exc
        async with self.ctx.db.unit_of_work() as session:
            updated = await lifecycle.to_ready(
                session,
                row.id,
                op_id,
                resumed=True,
                from_statuses=("paused",),
                opencode_url=endpoints.opencode_url,
                preview_url=endpoints.preview_url,
                secret_file_paths=secret_paths or list(row.secret_file_paths),
                expires_at=datetime.now(UTC)
                + timedelta(seconds=spec.timeout_seconds or self.settings.sandbox_timeout_seconds),
            )
        ready = (
            await boot.probe_agent(
                endpoints.opencode_url, spec.sandbox_token, self.settings.sandbox_agent_ready_timeout_seconds
            )
            is True
        )
        final = await self.terminator.run_pending(updated) if updated is not None else None
        return EnsureResult(
            final or updated or row,
            resumed=True,
            restore_outcome="restored",
            agent_ready=ready,
            report=report,
        )

    # --- boot (§5.1 steps 3-7) ------------------------------------------------------

    async def _boot(
        self, spec: EnsureSpec, provider: SandboxProvider, row: Sandbox, op_id: uuid.UUID, source: _Source
    ) -> EnsureResult:
        report = BootReport()
        ps: ProviderSandbox | None = None
        outcome = (
            "restored"
            if source.artifact is not None
            else ("fallback_fresh" if source.fallback_reason else "fresh")
        )
        fallback_reason = source.fallback_reason
        try:
            async with report.step("create"):
                ps, outcome, fallback_reason = await self._create(
                    spec, provider, row, source, outcome, fallback_reason
                )
            async with self.ctx.db.unit_of_work() as session:
                booting = await lifecycle.to_booting(
                    session,
                    row.id,
                    op_id,
                    provider_sandbox_id=ps.provider_sandbox_id,
                    isolation=ps.isolation,
                    host_id=ps.host_id,
                    port_base=ps.port_base,
                    restore_outcome=outcome,
                    source_artifact_id=source.artifact.id
                    if source.artifact is not None and outcome == "restored"
                    else None,
                    base_artifact_id=source.base.id if source.base is not None else None,
                )
            if booting is None:
                raise StepFailed("create", "the boot lost its lease")
            inputs = self._inputs(spec, provider, ps, booting, restored=outcome == "restored")
            result = await boot.run_essential(inputs, report)
            from_memory = source.artifact is not None and source.artifact.kind == "memory"
            if outcome == "restored" and from_memory and not result.agent_ready:
                # §5.2: readiness is mandatory after a memory restore, so the caller can fall back.
                raise StepFailed("agent", "the agent is not ready after the memory restore")
            endpoints = await provider.endpoints(ps)
        except (StepFailed, ProviderError) as exc:
            step = exc.step if isinstance(exc, StepFailed) else exc.operation
            message = exc.message
            await self._fail(row, ps, provider, step, message, report)
            raise BootFailed(f"boot failed at {step}: {message}", step=step) from None
        except BaseException:
            await self._fail(row, ps, provider, "internal", "unexpected error", report)
            raise
        async with self.ctx.db.unit_of_work() as session:
            ready = await lifecycle.to_ready(
                session,
                row.id,
                op_id,
                resumed=False,
                opencode_url=endpoints.opencode_url,
                preview_url=endpoints.preview_url,
                manifest_digest=result.manifest_digest,
                secret_file_paths=result.secret_file_paths,
                boot_report=report.as_dict(),
                repos=[{"repo_id": r.repo_id, "workspace_path": r.workspace_path} for r in spec.repos],
            )
        if ready is None:
            raise BootFailed("the sandbox was terminated while booting", step="ready")
        log.info(
            "sandbox.booted",
            sandbox_id=str(row.id),
            provider=provider.kind.value,
            restore_outcome=outcome,
            agent_ready=result.agent_ready,
            steps={name: (step["status"], step["ms"]) for name, step in report.steps.items()},
        )
        final = await self.terminator.run_pending(ready)
        return EnsureResult(
            final or ready,
            restore_outcome=outcome,
            fallback_reason=fallback_reason,
            agent_ready=result.agent_ready,
            report=report,
        )

    async def _create(
        self,
        spec: EnsureSpec,
        provider: SandboxProvider,
        row: Sandbox,
        source: _Source,
        outcome: str,
        fallback_reason: str,
    ) -> tuple[ProviderSandbox, str, str]:
        labels = {"proliferate_sandbox_id": str(row.id)}
        timeout_s = int((row.expires_at - datetime.now(UTC)).total_seconds())
        base_ref = _artifact_ref(source.base) if source.base is not None else None

        def request(src: ArtifactRef | None) -> CreateRequest:
            return CreateRequest(
                sandbox_id=str(row.id),
                purpose="session",
                timeout_s=max(timeout_s, 60),
                source=src,
                labels=labels,
                env={"PROLIFERATE_SANDBOX_ID": str(row.id)},
                port_base=row.port_base,
            )

        if source.artifact is None:
            return await provider.create(request(base_ref)), outcome, fallback_reason
        try:
            return await provider.create(request(_artifact_ref(source.artifact))), outcome, fallback_reason
        except ArtifactUnusable as exc:
            async with self.ctx.db.unit_of_work() as session:
                await ArtifactRepository(session).transition(
                    source.artifact.id,
                    ("available",),
                    "expired" if exc.detail == "expired" else "failed",
                    error=exc.message,
                )
            if not spec.allow_fresh_fallback:
                raise SnapshotMissing(exc.message, detail=exc.detail) from None
            reason = f"restore failed: {exc.message}"
            return await provider.create(request(base_ref)), "fallback_fresh", reason

    def _inputs(
        self,
        spec: EnsureSpec,
        provider: SandboxProvider,
        ps: ProviderSandbox,
        row: Sandbox,
        *,
        restored: bool,
    ) -> BootInputs:
        return BootInputs(
            sandbox_id=str(row.id),
            spec=spec,
            provider=provider,
            ps=ps,
            restored=restored,
            created_at=row.created_at,
            callback_base_url=self.settings.sandbox_callback_base_url,
            agent_argv=self.ctx.agent_argv,
            pull_on_restore=self.settings.sandbox_git_pull_on_restore,
            pull_cadence_s=self.settings.sandbox_git_pull_cadence_seconds,
            ready_timeout_s=self.settings.sandbox_agent_ready_timeout_seconds,
        )

    async def _fail(
        self,
        row: Sandbox,
        ps: ProviderSandbox | None,
        provider: SandboxProvider,
        step: str,
        message: str,
        report: BootReport,
    ) -> None:
        """§5.1 step 7: best-effort terminate, then `failed` with the redacted error."""
        if ps is not None:
            try:
                await provider.terminate(ps)
            except ProviderError as exc:
                log.warning("sandbox.boot_cleanup_failed", sandbox_id=str(row.id), error=exc.message)
        async with self.ctx.db.unit_of_work() as session:
            current = await SandboxRepository(session).get_unscoped(row.id)
            if current is not None:
                await lifecycle.to_failed(
                    session, current, code="boot_failed", step=step, message=redact(message)
                )
                await lifecycle.record_boot_report(session, row.id, report.as_dict())


def _artifact_ref(art: SnapshotArtifact) -> ArtifactRef:
    return ArtifactRef(
        id=str(art.id),
        kind=ArtifactKind(art.kind),
        provider_ref=art.provider_ref or "",
        sha256=art.sha256,
        size_bytes=art.size_bytes,
    )


def _ports_free(base: int, size: int) -> bool:
    import socket

    for port in range(base, base + size):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


__all__ = ["EnsureResult", "EnsureService", "ref_of"]
