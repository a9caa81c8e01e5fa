"""What the service writes into a sandbox home (libs/sandbox-mcp/CONTRACT.md): the session
env file, git credentials and config, metadata, supervisor.json. Pure renderers; the boot
pipeline writes their bytes through the provider."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from proliferate.agent_contract import CONTRACT_VERSION, CapabilityManifest
from proliferate.sandbox.providers.base import Ports, ProviderSandbox
from proliferate.sandbox.sandbox.schemas import Command, RepoSpec

CREDENTIAL_HELPER = "proliferate"  # git runs `git-credential-proliferate` (sandbox-mcp)


def paths(ps: ProviderSandbox) -> dict[str, str]:
    home = ps.home_dir.rstrip("/")
    tmp = ps.tmp_dir.rstrip("/")
    return {
        "home": home,
        "workspace": f"{home}/workspace",
        "meta_dir": f"{home}/.proliferate",
        "metadata": f"{home}/.proliferate/metadata.json",
        "supervisor": f"{home}/.proliferate/supervisor.json",
        "manifest": f"{home}/.proliferate/manifest.json",
        "gitconfig": f"{home}/.gitconfig",
        "tmp_dir": f"{tmp}/proliferate",
        "session_env": f"{tmp}/proliferate/session.env",
        "credentials": f"{tmp}/proliferate/git-credentials.json",
        "legacy_env": f"{tmp}/.proliferate_env.json",
    }


def repo_path(ps: ProviderSandbox, workspace_path: str) -> str:
    ws = paths(ps)["workspace"]
    return ws if workspace_path == "." else f"{ws}/{workspace_path}"


def repo_dir(ps: ProviderSandbox, repos: Sequence[RepoSpec]) -> str:
    """The single repo's folder, else ~/workspace."""
    return repo_path(ps, repos[0].workspace_path) if len(repos) == 1 else paths(ps)["workspace"]


def credential_key(clone_url: str) -> str:
    url = clone_url.rstrip("/")
    return url[: -len(".git")] if url.endswith(".git") else url


def git_credentials(repos: Sequence[tuple[str, str]]) -> bytes:
    """`{"<clone url without .git>": {"username", "password"}}` for (clone_url, token) pairs."""
    doc = {
        credential_key(url): {"username": "x-access-token", "password": token}
        for url, token in repos
        if token
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def gitconfig(name: str, email: str) -> bytes:
    lines = [
        "[credential]",
        f"\thelper = {CREDENTIAL_HELPER}",
        "\tuseHttpPath = true",
        "[init]",
        "\tdefaultBranch = main",
    ]
    if name or email:
        lines.append("[user]")
        if name:
            lines.append(f"\tname = {_git_value(name)}")
        if email:
            lines.append(f"\temail = {_git_value(email)}")
    lines += ["[safe]", "\tdirectory = *"]
    return ("\n".join(lines) + "\n").encode()


def _git_value(value: str) -> str:
    clean = value.replace("\n", " ").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{clean}"'


def session_env(values: Mapping[str, str]) -> bytes:
    """`KEY=<shell-quoted value>` lines (CONTRACT.md): `shlex.split` reads it, a shell sources it."""
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in sorted(values.items())).encode()


def parse_session_env(raw: bytes) -> dict[str, str]:
    result: dict[str, str] = {}
    for token in shlex.split(raw.decode()):
        key, _, value = token.partition("=")
        result[key] = value
    return result


def metadata(
    *,
    session_id: str,
    sandbox_id: str,
    repo_dir: str,
    created_at: datetime,
    last_git_fetch_at: datetime | None,
    manifest_digest: str,
    repos: Sequence[dict[str, str]] = (),
) -> bytes:
    doc = {
        "session_id": session_id,
        "sandbox_id": sandbox_id,
        "repo_dir": repo_dir,
        "created_at": created_at.isoformat(),
        "last_git_fetch_at": last_git_fetch_at.isoformat() if last_git_fetch_at else None,
        "manifest_digest": manifest_digest,
        "repos": list(repos),
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def supervisor_config(
    manifest: CapabilityManifest,
    ports: Ports,
    *,
    agent_argv: Sequence[str] | None,
    setup_commands: Sequence[Command],
    service_commands: Sequence[Command],
    autostart_services: bool,
    workspace: str,
    host_network: bool = False,
) -> bytes:
    processes: list[dict[str, Any]] = []
    for proc in manifest.processes:
        argv = list(proc.argv)
        if proc.name == "agent" and agent_argv:
            argv = [a.replace("{port}", str(ports.agent)) for a in agent_argv]
        processes.append(
            {
                "name": proc.name,
                "argv": argv,
                "cwd": proc.cwd,
                "env": dict(proc.env),
                "restart": proc.restart,
                "ready_http_path": proc.ready_http_path,
            }
        )

    def command(c: Command) -> dict[str, str]:
        base = workspace if c.workspace_path in ("", ".") else f"{workspace}/{c.workspace_path}"
        cwd = f"{base}/{c.cwd}" if c.cwd else base
        return {"name": c.name, "command": c.command, "cwd": cwd}

    doc = {
        "contract_version": CONTRACT_VERSION,
        "ports": ports.as_dict(),
        "processes": processes,
        "setup_commands": [command(c) for c in setup_commands],
        "service_commands": [command(c) for c in service_commands],
        "autostart_services": autostart_services,
    }
    if host_network:
        # Local sandboxes share the host's network: never guess preview ports another sandbox
        # may own, and keep the router on loopback.
        doc["preview_fallback"] = False
        doc["router_host"] = "127.0.0.1"
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
