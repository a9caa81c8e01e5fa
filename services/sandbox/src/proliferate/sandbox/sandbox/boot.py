"""The boot pipeline's essential phase (sandbox-provider.md §5.1 step 5), over provider
primitives only, the same for every provider.

Order matters: credentials before any git command; the manifest, secret files, metadata and
`supervisor.json` before `session.env`, whose appearance starts the agent (CONTRACT.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from proliferate.agent_contract import (
    AgentConfig as ContractAgentConfig,
)
from proliferate.agent_contract import (
    Capabilities as ContractCapabilities,
)
from proliferate.agent_contract import (
    CapabilityManifest,
    ManifestInput,
    build_manifest,
    stale_managed_paths,
)
from proliferate.agent_contract import (
    Ports as ContractPorts,
)
from proliferate.kit.logs import get_logger
from proliferate.sandbox.providers.base import FileWrite, ProviderError, ProviderSandbox, SandboxProvider
from proliferate.sandbox.redaction import redact
from proliferate.sandbox.sandbox import home
from proliferate.sandbox.sandbox.schemas import Command, EnsureSpec, RepoSpec, SecretFile

log = get_logger("proliferate.sandbox.boot")

CLONE_TIMEOUT_S = 120
PULL_TIMEOUT_S = 60
PROBE_TIMEOUT_S = 5.0


class StepFailed(Exception):
    def __init__(self, step: str, message: str, *, code: str = "boot_failed") -> None:
        self.step = step
        self.code = code
        self.message = redact(message, 1500)
        super().__init__(f"{step}: {self.message}")


@dataclass
class BootReport:
    """step → {status, ms, detail}; never secrets (details are redacted)."""

    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    @contextlib.asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[dict[str, Any]]:
        entry: dict[str, Any] = {"status": "ok", "ms": 0, "detail": ""}
        self.steps[name] = entry
        t0 = time.monotonic()
        try:
            yield entry
        except BaseException as exc:
            entry["status"] = "failed"
            entry["detail"] = redact(str(exc), 500)
            raise
        finally:
            entry["ms"] = int((time.monotonic() - t0) * 1000)

    def note(self, name: str, detail: str, status: str = "noted") -> None:
        self.steps[name] = {"status": status, "ms": 0, "detail": redact(detail, 500)}

    def total_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.steps)


@dataclass(frozen=True)
class BootInputs:
    sandbox_id: str
    spec: EnsureSpec
    provider: SandboxProvider
    ps: ProviderSandbox
    restored: bool
    created_at: datetime
    callback_base_url: str
    agent_argv: Sequence[str] | None
    pull_on_restore: bool
    pull_cadence_s: int
    ready_timeout_s: float


@dataclass
class BootOutcome:
    repo_dir: str
    manifest_digest: str
    secret_file_paths: list[str]
    agent_ready: bool
    last_git_fetch_at: datetime | None
    notes: list[str] = field(default_factory=list)


def should_pull(
    *,
    enabled: bool,
    has_snapshot: bool,
    repo_count: int,
    cadence_s: int,
    last: datetime | None,
    now: datetime,
) -> bool:
    """§5.6."""
    if not enabled or not has_snapshot or repo_count == 0:
        return False
    if cadence_s <= 0 or last is None:
        return True
    return (now - last).total_seconds() > cadence_s


def session_env_values(inp: BootInputs, ws: str) -> dict[str, str]:
    """The env contract (agent-contract.md §4.4); caller env is checked for reserved keys."""
    spec = inp.spec
    values: dict[str, str] = dict(spec.env)
    values.update(
        {
            "PROLIFERATE_GATEWAY_URL": inp.callback_base_url,
            "PROLIFERATE_SESSION_ID": str(spec.session_id),
            "PROLIFERATE_SANDBOX_ID": inp.sandbox_id,
            "PROLIFERATE_CONTRACT_VERSION": "1",
            "SANDBOX_MCP_AUTH_TOKEN": spec.sandbox_token,
            "SESSION_ID": str(spec.session_id),
            "WORKSPACE_DIR": ws,
            # The agent's own password is the supervisor's (kept in its memory, added by the
            # router; CONTRACT.md): nothing to write here.
            "OPENCODE_DISABLE_DEFAULT_PLUGINS": "true",
        }
    )
    if spec.llm is not None:
        values["ANTHROPIC_API_KEY"] = spec.llm.api_key
        values["ANTHROPIC_BASE_URL"] = spec.llm.base_url
    token = next((r.token for r in spec.repos if r.token), "")
    if token:
        values["GIT_TOKEN"] = token
        values["GH_TOKEN"] = token
    if spec.git_name:
        values["GIT_AUTHOR_NAME"] = values["GIT_COMMITTER_NAME"] = spec.git_name
    if spec.git_email:
        values["GIT_AUTHOR_EMAIL"] = values["GIT_COMMITTER_EMAIL"] = spec.git_email
    return values


async def _exec_checked(
    inp: BootInputs, step: str, argv: Sequence[str], *, cwd: str | None = None, timeout_s: int = 60
) -> str:
    try:
        result = await inp.provider.exec(inp.ps, argv, cwd=cwd, timeout_s=timeout_s)
    except ProviderError as exc:
        raise StepFailed(step, exc.message) from exc
    if not result.ok:
        raise StepFailed(
            step, f"{argv[0]} exited {result.exit_code}: {(result.stderr or result.stdout)[-800:]}"
        )
    return result.stdout


async def write_credentials(inp: BootInputs, repos: Sequence[RepoSpec]) -> None:
    p = home.paths(inp.ps)
    await inp.provider.write_files(
        inp.ps,
        [
            FileWrite(p["credentials"], home.git_credentials([(r.clone_url, r.token) for r in repos]), 0o600),
            FileWrite(p["gitconfig"], home.gitconfig(inp.spec.git_name, inp.spec.git_email), 0o644),
        ],
    )


async def clone(inp: BootInputs, report: BootReport, repo: RepoSpec) -> None:
    dest = home.repo_path(inp.ps, repo.workspace_path)
    base = ["git", "clone", "--depth", "1", "--no-tags"]
    if repo.branch:
        try:
            await _exec_checked(
                inp,
                "clone",
                [*base, "--branch", repo.branch, "--", repo.clone_url, dest],
                timeout_s=CLONE_TIMEOUT_S,
            )
            return
        except StepFailed as exc:
            if "not found" not in exc.message.lower() and "could not find" not in exc.message.lower():
                raise
            await inp.provider.exec(inp.ps, ["rm", "-rf", "--", dest], timeout_s=30)
            report.note(
                f"branch:{repo.repo_id}", f"branch {repo.branch!r} not found; cloned the default branch"
            )
    await _exec_checked(inp, "clone", [*base, "--", repo.clone_url, dest], timeout_s=CLONE_TIMEOUT_S)


async def read_metadata(inp: BootInputs) -> dict[str, Any] | None:
    raw = await inp.provider.read_file(inp.ps, home.paths(inp.ps)["metadata"], 1024 * 1024)
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


async def pull(inp: BootInputs, report: BootReport, repos: Sequence[RepoSpec]) -> bool:
    """`git pull --ff-only` per repo; failures are reported, never fatal. True if all succeeded."""
    ok = True
    for repo in repos:
        path = home.repo_path(inp.ps, repo.workspace_path)
        try:
            result = await inp.provider.exec(
                inp.ps, ["git", "-C", path, "pull", "--ff-only", "--quiet"], timeout_s=PULL_TIMEOUT_S
            )
            if not result.ok:
                ok = False
                report.note(
                    f"pull:{repo.repo_id}",
                    f"pull failed ({result.exit_code}): {result.stderr[-300:]}",
                    "failed",
                )
        except ProviderError as exc:
            ok = False
            report.note(f"pull:{repo.repo_id}", f"pull failed: {exc.message}", "failed")
    return ok


def render_manifest(inp: BootInputs, repo_dir: str) -> CapabilityManifest:
    spec = inp.spec
    caps = inp.provider.capabilities
    ports = inp.ps.ports
    agent = ContractAgentConfig(
        model_id=spec.agent.model_id or "claude-sonnet-4.6",
        reasoning_effort=spec.agent.reasoning_effort or "normal",  # type: ignore[arg-type]
    )
    return build_manifest(
        ManifestInput(
            mode=spec.prompt_mode,  # type: ignore[arg-type]
            home_dir=inp.ps.home_dir,
            repo_dir=repo_dir,
            prompt=spec.system_prompt,
            llm_base_url=spec.llm.base_url if spec.llm else "http://127.0.0.1:1/v1",
            agent=agent,
            ports=ContractPorts(router=ports.router, agent=ports.agent, api=ports.api, vscode=ports.vscode),
            caps=ContractCapabilities(docker=caps.docker, vscode=caps.vscode),
            trigger_context=spec.trigger_context,
        )
    )


async def write_manifest(inp: BootInputs, manifest: CapabilityManifest) -> None:
    p = home.paths(inp.ps)
    previous = await inp.provider.read_file(inp.ps, p["manifest"], 1024 * 1024)
    if previous is not None:
        stale = stale_managed_paths(previous, manifest)
        if stale:
            await inp.provider.remove_files(inp.ps, [f"{p['home']}/{s}" for s in stale])
    await inp.provider.write_files(
        inp.ps, [FileWrite(f"{p['home']}/{f.path}", f.content, f.mode_bits) for f in manifest.files]
    )


async def write_secret_files(
    provider: SandboxProvider, ps: ProviderSandbox, files: Sequence[SecretFile], repo_paths: Sequence[str]
) -> list[str]:
    """Secret files (0600) and their git excludes; returns their paths relative to ~/workspace."""
    if not files:
        await _exclude(provider, ps, repo_paths, {})
        return []
    ws = home.paths(ps)["workspace"]
    writes = [FileWrite(f"{ws}/{f.relative_path}", f.content, 0o600) for f in files]
    excludes: dict[str, list[str]] = {}
    for f in files:
        target = f"{ws}/{f.relative_path}"
        owner = max((r for r in repo_paths if target.startswith(r.rstrip("/") + "/")), key=len, default=None)
        if owner is not None:
            excludes.setdefault(owner, []).append("/" + target[len(owner.rstrip("/")) + 1 :])
    await provider.write_files(ps, writes)
    await _exclude(provider, ps, repo_paths, excludes)
    return [f.relative_path for f in files]


async def _exclude(
    provider: SandboxProvider, ps: ProviderSandbox, repo_paths: Sequence[str], extra: Mapping[str, list[str]]
) -> None:
    writes: list[FileWrite] = []
    for repo in repo_paths:
        path = f"{repo.rstrip('/')}/.git/info/exclude"
        current = (await provider.read_file(ps, path, 256 * 1024) or b"").decode(errors="replace")
        lines = current.splitlines()
        wanted = [".proliferate/", *extra.get(repo, [])]
        missing = [w for w in wanted if w not in lines]
        if missing:
            text = (
                current + ("" if not current or current.endswith("\n") else "\n") + "\n".join(missing) + "\n"
            )
            writes.append(FileWrite(path, text.encode(), 0o644))
    if writes:
        await provider.write_files(ps, writes)


async def run_essential(inp: BootInputs, report: BootReport) -> BootOutcome:
    spec = inp.spec
    p = home.paths(inp.ps)
    now = datetime.now(UTC)
    last_fetch: datetime | None = None
    notes: list[str] = []
    async with report.step("credentials"):
        await write_credentials(inp, spec.repos)
    if not inp.restored:
        async with report.step("clone"):
            for repo in spec.repos:
                await clone(inp, report, repo)
        repo_dir = home.repo_dir(inp.ps, spec.repos)
        last_fetch = now if spec.repos else None
    else:
        async with report.step("metadata") as entry:
            meta = await read_metadata(inp)
            restored_dir = _restored_repo_dir(meta, p["workspace"])
            repo_dir = restored_dir or p["workspace"]
            if restored_dir is None:
                entry["status"] = "noted"
                entry["detail"] = "metadata.json missing; repo_dir = ~/workspace"
                notes.append("metadata_missing")
            last_fetch = _parse_time(meta.get("last_git_fetch_at") if meta else None)
        due = should_pull(
            enabled=inp.pull_on_restore,
            has_snapshot=True,
            repo_count=len(spec.repos),
            cadence_s=inp.pull_cadence_s,
            last=last_fetch,
            now=now,
        )
        if due:
            async with report.step("freshness"):
                if await pull(inp, report, spec.repos):
                    last_fetch = now
        else:
            report.note("freshness", "not due", "skipped")
    manifest = render_manifest(inp, repo_dir)
    async with report.step("manifest"):
        await write_manifest(inp, manifest)
    repo_paths = [home.repo_path(inp.ps, r.workspace_path) for r in spec.repos]
    async with report.step("secret_files"):
        secret_paths = await write_secret_files(inp.provider, inp.ps, spec.secret_files, repo_paths)
    async with report.step("session_files"):
        await _write_session_files(inp, manifest, repo_dir, last_fetch)
    agent_ready = await wait_agent_ready(inp, report)
    return BootOutcome(repo_dir, manifest.digest, secret_paths, agent_ready, last_fetch, notes)


def _restored_repo_dir(meta: dict[str, Any] | None, workspace: str) -> str | None:
    """The snapshot's repo dir re-rooted at this sandbox's workspace (homes differ between
    sandboxes under `process` isolation); None when metadata.json gives no usable one."""
    value = meta.get("repo_dir") if meta else None
    if not isinstance(value, str) or ".." in value.split("/"):
        return None
    _, sep, rest = value.partition("/workspace")
    if not sep or (rest and not rest.startswith("/")):
        return None
    return workspace + rest


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


async def _write_session_files(
    inp: BootInputs, manifest: CapabilityManifest, repo_dir: str, last_fetch: datetime | None
) -> None:
    p = home.paths(inp.ps)
    spec = inp.spec
    meta = home.metadata(
        session_id=str(spec.session_id),
        sandbox_id=inp.sandbox_id,
        repo_dir=repo_dir,
        created_at=inp.created_at,
        last_git_fetch_at=last_fetch,
        manifest_digest=manifest.digest,
        repos=[{"repo_id": r.repo_id, "workspace_path": r.workspace_path} for r in spec.repos],
    )
    supervisor = home.supervisor_config(
        manifest,
        inp.ps.ports,
        agent_argv=inp.agent_argv,
        setup_commands=spec.setup_commands,
        service_commands=spec.service_commands,
        autostart_services=spec.autostart_services,
        workspace=p["workspace"],
        host_network=inp.provider.placement is not None,
    )
    await inp.provider.write_files(
        inp.ps, [FileWrite(p["metadata"], meta, 0o644), FileWrite(p["supervisor"], supervisor, 0o644)]
    )
    env = home.session_env(session_env_values(inp, p["workspace"]))
    # Last: its appearance lets the supervisor start the agent.
    await inp.provider.write_files(inp.ps, [FileWrite(p["session_env"], env, 0o600)])


async def wait_agent_ready(inp: BootInputs, report: BootReport) -> bool:
    """Poll `GET <agent>/session` through the router (§5.1 f): True when it answers, False when
    slow (the supervisor's view goes into the report); an agent the supervisor gave up on
    fails the boot (`agent_start_failed`)."""
    async with report.step("agent") as entry:
        endpoints = await inp.provider.endpoints(inp.ps)

        async def gave_up() -> str | None:
            status = await supervisor_status(inp.provider, inp.ps)
            agent = (status.get("processes") or {}).get("agent") or {}
            if agent.get("state") == "gave_up" or status.get("state") == "failed":
                return str(agent.get("error") or status.get("error") or "the agent kept exiting")
            return None

        ready = await probe_agent(
            endpoints.opencode_url, inp.spec.sandbox_token, inp.ready_timeout_s, check=gave_up
        )
        if ready is not True:
            if isinstance(ready, str):
                raise StepFailed("agent", f"the agent did not start: {ready}", code="agent_start_failed")
            status = await supervisor_status(inp.provider, inp.ps)
            agent = (status.get("processes") or {}).get("agent") or {}
            entry["status"] = "noted"
            entry["detail"] = redact(
                f"agent not ready within {inp.ready_timeout_s:.0f}s (supervisor {status.get('state', '?')},"
                f" agent {agent.get('state', '?')}, exit {agent.get('last_exit_code')},"
                f" {agent.get('error') or ''})",
                500,
            )
            return False
        return True


async def supervisor_status(provider: SandboxProvider, ps: ProviderSandbox) -> dict[str, Any]:
    """`boot-status.json` as the supervisor last wrote it ({} when absent or unreadable)."""
    try:
        raw = await provider.read_file(ps, f"{home.paths(ps)['meta_dir']}/boot-status.json", 256 * 1024)
        doc = json.loads(raw) if raw else {}
    except (ProviderError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


FAST_PROBE_S = 0.1
FAST_PROBE_WINDOW_S = 10.0


async def probe_agent(
    opencode_url: str,
    token: str,
    budget_s: float,
    *,
    check: Callable[[], Awaitable[str | None]] | None = None,
) -> bool | str:
    """True once the agent answers; False at the end of the budget; or the reason `check`
    gives for giving up early."""
    started = time.monotonic()
    deadline = started + budget_s
    delay = FAST_PROBE_S
    next_check = started + 2.0
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(f"{opencode_url}/session", headers=headers)
                if response.status_code == 200:
                    return True
            if check is not None and time.monotonic() >= next_check:
                next_check = time.monotonic() + 2.0
                reason = await check()
                if reason is not None:
                    return reason
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(delay, remaining))
            # Every probe interval is added to the boot the user waits for: probe often while a
            # normal boot would end, back off only for a slow one.
            if time.monotonic() - started > FAST_PROBE_WINDOW_S:
                delay = min(delay * 1.5, 2.0)


def command_list(commands: Sequence[Command]) -> list[Command]:
    return list(commands)
