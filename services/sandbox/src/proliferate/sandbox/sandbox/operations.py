"""Operations on a running sandbox (no lease, `ready` required): exec, file reads, secret
files, credential refresh, service command tests; and the read-only queries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from proliferate.kit.logs import get_logger
from proliferate.sandbox.context import SandboxContext
from proliferate.sandbox.errors import (
    InvalidRequest,
    ProviderUnavailable,
    SandboxNotFound,
    SandboxNotReady,
    SandboxTerminated,
)
from proliferate.sandbox.models import Sandbox
from proliferate.sandbox.providers.base import (
    ExecResult,
    FileChunk,
    FileWrite,
    Health,
    ProviderError,
    ProviderSandbox,
    ReadLimits,
    SandboxProvider,
    cap_output,
)
from proliferate.sandbox.redaction import redact
from proliferate.sandbox.sandbox import boot, home
from proliferate.sandbox.sandbox.repository import SandboxRepository
from proliferate.sandbox.sandbox.schemas import Command, SecretFile, resolve_in_home

log = get_logger("proliferate.sandbox.operations")


@dataclass(frozen=True)
class ProviderStatus:
    provider: SandboxProvider
    is_default: bool
    health: Health


@dataclass(frozen=True)
class ServiceCommandResult:
    name: str
    exit_code: int
    output: str
    timed_out: bool


class SandboxOperations:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    # --- reads ----------------------------------------------------------------------

    async def get(self, organization_id: uuid.UUID, sandbox_id: uuid.UUID) -> Sandbox:
        async with self.ctx.db.unit_of_work() as session:
            row = await SandboxRepository(session).get(organization_id, sandbox_id)
        if row is None:
            raise SandboxNotFound(sandbox_id=str(sandbox_id))
        return row

    async def list_sandboxes(
        self,
        organization_id: uuid.UUID,
        *,
        statuses: Sequence[str],
        session_id: uuid.UUID | None,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[Sandbox]:
        async with self.ctx.db.unit_of_work() as session:
            return await SandboxRepository(session).list_for_organization(
                organization_id, statuses=statuses, session_id=session_id, limit=limit, after=after
            )

    async def check(self, organization_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        """Alive ids among `ids` (side-effect free). A listing failure is UNAVAILABLE."""
        async with self.ctx.db.unit_of_work() as session:
            rows = await SandboxRepository(session).in_organization(organization_id, ids)
        candidates = [r for r in rows if r.status in ("booting", "ready", "paused") and r.provider_sandbox_id]
        alive: set[str] = set()
        by_provider: dict[str, list[Sandbox]] = {}
        for row in candidates:
            by_provider.setdefault(row.provider, []).append(row)
        for name, group in by_provider.items():
            provider = self.ctx.providers.get(name)
            try:
                alive |= await provider.list_alive([self.ctx.handle(r) for r in group])
            except ProviderError as exc:
                raise ProviderUnavailable(f"{name} liveness listing failed: {exc.message}") from exc
        return [r.id for r in candidates if str(r.id) in alive]

    async def providers(self) -> list[ProviderStatus]:
        statuses = []
        for provider in self.ctx.providers:
            health = await provider.health()
            statuses.append(
                ProviderStatus(provider, provider.kind.value == self.ctx.providers.default, health)
            )
        return statuses

    # --- in-sandbox operations ------------------------------------------------------

    async def _running(
        self, organization_id: uuid.UUID, sandbox_id: uuid.UUID
    ) -> tuple[Sandbox, SandboxProvider, ProviderSandbox]:
        row = await self.get(organization_id, sandbox_id)
        if row.status in ("terminating", "terminated", "failed"):
            raise SandboxTerminated(status=row.status)
        if row.status != "ready":
            raise SandboxNotReady(status=row.status)
        provider = self.ctx.provider_for(row)
        return row, provider, self.ctx.handle(row)

    async def exec(
        self,
        organization_id: uuid.UUID,
        sandbox_id: uuid.UUID,
        argv: Sequence[str],
        *,
        cwd: str,
        env: Mapping[str, str],
        timeout_s: int,
    ) -> ExecResult:
        _, provider, ps = await self._running(organization_id, sandbox_id)
        workdir = resolve_in_home(cwd, ps.home_dir, default=home.paths(ps)["workspace"])
        try:
            return await provider.exec(ps, argv, cwd=workdir, env=env, timeout_s=timeout_s)
        except ProviderError as exc:
            raise ProviderUnavailable(exc.message) from exc

    async def read_files(
        self, organization_id: uuid.UUID, sandbox_id: uuid.UUID, folder: str, limits: ReadLimits
    ) -> AsyncIterator[FileChunk]:
        _, provider, ps = await self._running(organization_id, sandbox_id)
        path = resolve_in_home(folder, ps.home_dir, default=home.paths(ps)["workspace"])
        try:
            async for chunk in provider.read_files(ps, path, limits):
                yield chunk
        except ProviderError as exc:
            raise ProviderUnavailable(exc.message) from exc

    async def write_secret_files(
        self, organization_id: uuid.UUID, sandbox_id: uuid.UUID, files: Sequence[SecretFile]
    ) -> list[str]:
        row, provider, ps = await self._running(organization_id, sandbox_id)
        repo_paths = [home.repo_path(ps, r["workspace_path"]) for r in row.repos]
        try:
            written = await boot.write_secret_files(provider, ps, files, repo_paths)
        except ProviderError as exc:
            raise ProviderUnavailable(exc.message) from exc
        async with self.ctx.db.unit_of_work() as session:
            paths = sorted({*row.secret_file_paths, *written})
            await SandboxRepository(session).update_where(row.id, secret_file_paths=paths)
        return written

    async def refresh_credentials(
        self,
        organization_id: uuid.UUID,
        sandbox_id: uuid.UUID,
        *,
        repos: Sequence[tuple[str, str]],
        clear_repo_tokens: bool,
        sandbox_token: str,
        llm: tuple[str, str] | None,
    ) -> tuple[bool, int]:
        """New repo tokens (git-credentials.json) and/or sandbox token / virtual key (session.env)."""
        _, provider, ps = await self._running(organization_id, sandbox_id)
        p = home.paths(ps)
        writes: list[FileWrite] = []
        if repos or clear_repo_tokens:
            writes.append(FileWrite(p["credentials"], home.git_credentials(repos), 0o600))
        replaced = False
        try:
            if sandbox_token or llm is not None:
                raw = await provider.read_file(ps, p["session_env"], 2 * 1024 * 1024)
                if raw is None:
                    raise InvalidRequest("the sandbox has no session env to refresh")
                values = home.parse_session_env(raw)
                if sandbox_token:
                    values["SANDBOX_MCP_AUTH_TOKEN"] = sandbox_token
                    replaced = True
                if llm is not None:
                    values["ANTHROPIC_BASE_URL"], values["ANTHROPIC_API_KEY"] = llm
                first_token = next((t for _, t in repos if t), "")
                if first_token:
                    values["GIT_TOKEN"] = values["GH_TOKEN"] = first_token
                writes.append(FileWrite(p["session_env"], home.session_env(values), 0o600))
            if writes:
                await provider.write_files(ps, writes)
        except ProviderError as exc:
            raise ProviderUnavailable(exc.message) from exc
        return replaced, len([t for _, t in repos if t])

    async def test_service_commands(
        self, organization_id: uuid.UUID, sandbox_id: uuid.UUID, commands: Sequence[Command], timeout_s: int
    ) -> list[ServiceCommandResult]:
        """Run each saved command for up to `timeout_s` and capture its output; a command still
        running then (a server) is stopped and reported with exit code 124."""
        _, provider, ps = await self._running(organization_id, sandbox_id)
        ws = home.paths(ps)["workspace"]
        results = []
        for cmd in commands:
            base = ws if cmd.workspace_path in ("", ".") else f"{ws}/{cmd.workspace_path}"
            cwd = f"{base}/{cmd.cwd}" if cmd.cwd else base
            try:
                result = await provider.exec(
                    ps, ["bash", "-c", f"{cmd.command} 2>&1"], cwd=cwd, timeout_s=timeout_s
                )
            except ProviderError as exc:
                raise ProviderUnavailable(exc.message) from exc
            output, _ = cap_output(redact(result.stdout + result.stderr, 64 * 1024))
            results.append(ServiceCommandResult(cmd.name, result.exit_code, output, result.timed_out))
        return results
