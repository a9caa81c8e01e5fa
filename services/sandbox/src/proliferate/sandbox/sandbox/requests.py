"""Protobuf requests → validated domain structs (sandbox-provider.md §7). Everything here
runs before any row is written or any provider is called."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from proliferate.sandbox.errors import InvalidRequest, LimitsExceeded
from proliferate.sandbox.providers.base import ReadLimits
from proliferate.sandbox.sandbox import schemas as s

MAX_PAGE = 200
MAX_CHECK_IDS = 500
TERMINATE_REASONS = ("requested", "session_ended", "expired")


def repo_specs(repos: list[pb.RepoSpec], *, allow_insecure: bool) -> tuple[s.RepoSpec, ...]:
    specs = [
        s.RepoSpec(
            repo_id=r.repo_id,
            clone_url=r.clone_url,
            token=r.token,
            workspace_path=r.workspace_path or ".",
            branch=r.branch,
        )
        for r in repos
    ]
    s.check_repos(specs, allow_insecure=allow_insecure)
    return tuple(specs)


def secret_files(files: list[pb.SecretFile]) -> tuple[s.SecretFile, ...]:
    decoded = [
        s.SecretFile(workspace_path=f.workspace_path or ".", file_path=f.file_path, content=f.content)
        for f in files
    ]
    s.check_secret_files(decoded)
    return tuple(decoded)


def commands(items: Sequence[Any], *, limit: int, what: str, named: bool) -> tuple[s.Command, ...]:
    decoded = [
        s.Command(
            name=c.name or f"setup-{i + 1}",
            command=c.command,
            cwd=c.cwd,
            workspace_path=c.workspace_path or ".",
        )
        for i, c in enumerate(items)
    ]
    s.check_commands(decoded, limit=limit, what=what, named=named)
    return tuple(decoded)


def ensure_spec(req: pb.EnsureSandboxRequest, *, allow_insecure_git: bool) -> s.EnsureSpec:
    organization_id = s.require_uuid(req.organization_id, "organization_id")
    session_id = s.require_uuid(req.session_id, "session_id")
    s.check_prompt_mode(req.prompt_mode)
    if len(req.system_prompt.encode()) > s.MAX_PROMPT_BYTES:
        raise LimitsExceeded("system_prompt exceeds 64 KiB")
    if req.provider and req.provider not in ("local", "modal", "e2b"):
        raise InvalidRequest(f"unknown provider {req.provider[:40]!r}", field="provider")
    env = dict(req.env)
    s.check_env(env)
    repos = repo_specs(list(req.repos), allow_insecure=allow_insecure_git)
    files = secret_files(list(req.secret_files))
    services = commands(
        list(req.service_commands), limit=s.MAX_SERVICE_COMMANDS, what="service commands", named=True
    )
    setups = commands(list(req.setup_commands), limit=s.MAX_SETUP_COMMANDS, what="setup commands", named=True)
    trigger = bytes(req.trigger_context_json) if req.trigger_context_json else None
    if trigger is not None:
        s.check_trigger_context(trigger)
    if req.timeout_seconds < 0 or req.timeout_seconds > 7 * 86400:
        raise InvalidRequest("timeout_seconds must be between 0 and 7 days", field="timeout_seconds")
    if req.timeout_seconds and req.timeout_seconds < 60:
        raise InvalidRequest("timeout_seconds must be at least 60", field="timeout_seconds")
    if not req.sandbox_token:
        raise InvalidRequest("sandbox_token is required", field="sandbox_token")
    llm = s.LlmAccess(req.llm.base_url, req.llm.api_key) if req.HasField("llm") and req.llm.base_url else None
    if llm is not None and not llm.base_url.startswith(("http://", "https://")):
        raise InvalidRequest("llm.base_url must be an http(s) URL", field="llm.base_url")
    agent = s.AgentConfig(
        agent_type=req.agent.agent_type or "opencode",
        model_id=req.agent.model_id,
        reasoning_effort=req.agent.reasoning_effort or "normal",
    )
    if agent.agent_type != "opencode":
        raise InvalidRequest("agent_type must be opencode", field="agent.agent_type")
    if agent.reasoning_effort not in ("quick", "normal", "deep"):
        raise InvalidRequest("reasoning_effort must be quick, normal or deep", field="agent.reasoning_effort")
    return s.EnsureSpec(
        organization_id=organization_id,
        session_id=session_id,
        run_id=s.parse_uuid(req.run_id, "run_id", required=False),
        provider=req.provider or None,
        fresh=req.mode == pb.EnsureSandboxRequest.FRESH,
        current_sandbox_id=s.parse_uuid(req.current_sandbox_id, "current_sandbox_id", required=False),
        prompt_mode=req.prompt_mode,
        system_prompt=req.system_prompt,
        agent=agent,
        repos=repos,
        restore_artifact_id=s.parse_uuid(req.restore_artifact_id, "restore_artifact_id", required=False),
        allow_fresh_fallback=req.allow_fresh_fallback,
        env=env,
        llm=llm,
        sandbox_token=req.sandbox_token,
        git_name=req.git_identity.name,
        git_email=req.git_identity.email,
        secret_files=files,
        service_commands=services,
        autostart_services=req.autostart_services,
        setup_commands=setups,
        trigger_context=trigger,
        timeout_seconds=req.timeout_seconds or None,
    )


def read_limits(req: pb.ReadFilesRequest) -> ReadLimits:
    default = ReadLimits()
    values = (req.max_files, req.max_file_bytes, req.max_total_bytes)
    if any(v < 0 for v in values):
        raise InvalidRequest("limits must be positive")
    return ReadLimits(
        max_files=min(req.max_files or default.max_files, default.max_files),
        max_file_bytes=min(req.max_file_bytes or default.max_file_bytes, default.max_file_bytes),
        max_total_bytes=min(req.max_total_bytes or default.max_total_bytes, default.max_total_bytes),
    )


def terminate_reason(reason: str) -> str:
    reason = reason or "requested"
    if reason not in TERMINATE_REASONS:
        raise InvalidRequest(f"reason must be one of {', '.join(TERMINATE_REASONS)}", field="reason")
    return reason


def check_ids(ids: list[str]) -> list[str]:
    if len(ids) > MAX_CHECK_IDS:
        raise LimitsExceeded(f"at most {MAX_CHECK_IDS} ids")
    return ids
