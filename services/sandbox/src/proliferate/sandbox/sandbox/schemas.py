"""What a request means once decoded and validated (sandbox-provider.md §7).

The servicer turns protobuf requests into these structs; every check that can refuse a
request runs here, before any row is written or any provider is called. Secret values
(tokens, env values, secret file contents) live only in these in-memory structs.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from proliferate.sandbox.errors import (
    InvalidRepoSpec,
    InvalidRequest,
    LimitsExceeded,
    ReservedEnvKey,
    UnsafePath,
)

MAX_REPOS = 20
MAX_ENV_KEYS = 1000
MAX_ENV_BYTES = 1024 * 1024
MAX_SECRET_FILES = 50
MAX_SECRET_BYTES = 1024 * 1024
MAX_SECRET_PATH = 500
MAX_SERVICE_COMMANDS = 10
MAX_SETUP_COMMANDS = 50
MAX_COMMAND_CHARS = 10_000
MAX_TRIGGER_CONTEXT = 1024 * 1024
MAX_PROMPT_BYTES = 64 * 1024
MAX_EXEC_ARGV_BYTES = 64 * 1024
EXEC_DEFAULT_TIMEOUT = 30
EXEC_MAX_TIMEOUT = 600
PROMPT_MODES = ("setup", "coding", "automation", "scratch")

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_PREFIXES = (
    "PROLIFERATE_",
    "ANTHROPIC_",
    "LLM_PROXY_",
    "GIT_AUTHOR_",
    "GIT_COMMITTER_",
    "OPENCODE_",
)
_RESERVED_KEYS = frozenset(
    {"SANDBOX_MCP_AUTH_TOKEN", "GIT_TOKEN", "GH_TOKEN", "SESSION_ID", "WORKSPACE_DIR", "HOME", "PATH"}
)
_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_BRANCH_BAD = re.compile(r"(\.\.|@\{|[\x00-\x20\x7f~^:?*\[\\])")


@dataclass(frozen=True)
class RepoSpec:
    repo_id: str
    clone_url: str
    token: str = field(repr=False)
    workspace_path: str
    branch: str


@dataclass(frozen=True)
class SecretFile:
    workspace_path: str
    file_path: str
    content: bytes = field(repr=False)

    @property
    def relative_path(self) -> str:
        """Path under ~/workspace."""
        if self.workspace_path == ".":
            return self.file_path
        return f"{self.workspace_path}/{self.file_path}"


@dataclass(frozen=True)
class Command:
    name: str
    command: str
    cwd: str
    workspace_path: str


@dataclass(frozen=True)
class LlmAccess:
    base_url: str
    api_key: str = field(repr=False)


@dataclass(frozen=True)
class AgentConfig:
    agent_type: str = "opencode"
    model_id: str = ""
    reasoning_effort: str = "normal"


@dataclass(frozen=True)
class EnsureSpec:
    organization_id: uuid.UUID
    session_id: uuid.UUID
    run_id: uuid.UUID | None
    provider: str | None
    fresh: bool
    current_sandbox_id: uuid.UUID | None
    prompt_mode: str
    system_prompt: str
    agent: AgentConfig
    repos: tuple[RepoSpec, ...]
    restore_artifact_id: uuid.UUID | None
    allow_fresh_fallback: bool
    env: dict[str, str] = field(repr=False)
    llm: LlmAccess | None
    sandbox_token: str = field(repr=False)
    git_name: str
    git_email: str
    secret_files: tuple[SecretFile, ...]
    service_commands: tuple[Command, ...]
    autostart_services: bool
    setup_commands: tuple[Command, ...]
    trigger_context: bytes | None
    timeout_seconds: int | None


def parse_uuid(value: str, name: str, *, required: bool = True) -> uuid.UUID | None:
    if not value:
        if required:
            raise InvalidRequest(f"{name} is required", field=name)
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidRequest(f"{name} is not a UUID", field=name) from None


def require_uuid(value: str, name: str) -> uuid.UUID:
    parsed = parse_uuid(value, name)
    assert parsed is not None
    return parsed


def check_workspace_path(path: str) -> None:
    if path == ".":
        return
    parts = path.split("/")
    if not path or len(path) > 200 or any(p in ("", ".", "..") or not _SEGMENT.match(p) for p in parts):
        raise InvalidRepoSpec(
            f"workspace_path {path[:100]!r} must be '.' or relative segments of [A-Za-z0-9._-]"
        )


def check_branch(branch: str) -> None:
    if not branch:
        return
    if (
        branch.startswith(("-", "/", "."))
        or branch.endswith(("/", ".lock", "."))
        or "//" in branch
        or _BRANCH_BAD.search(branch)
        or len(branch) > 255
    ):
        raise InvalidRepoSpec(f"branch {branch[:100]!r} is not a valid git ref", field="branch")


def check_clone_url(url: str, *, allow_insecure: bool) -> None:
    lowered = url.lower()
    allowed = ("https://",) + (("http://", "file://") if allow_insecure else ())
    if not lowered.startswith(allowed):
        raise InvalidRepoSpec("clone_url must be https://", field="clone_url")
    if "@" in url.split("://", 1)[1].split("/", 1)[0]:
        raise InvalidRepoSpec("clone_url must not carry credentials", field="clone_url")
    if any(c.isspace() for c in url) or len(url) > 2000:
        raise InvalidRepoSpec("clone_url is malformed", field="clone_url")


def check_repos(repos: list[RepoSpec], *, allow_insecure: bool) -> None:
    if len(repos) > MAX_REPOS:
        raise InvalidRepoSpec(f"at most {MAX_REPOS} repos", count=len(repos))
    seen: set[str] = set()
    for repo in repos:
        if not repo.repo_id:
            raise InvalidRepoSpec("repo_id is required")
        check_clone_url(repo.clone_url, allow_insecure=allow_insecure)
        check_workspace_path(repo.workspace_path)
        check_branch(repo.branch)
        if repo.workspace_path in seen:
            raise InvalidRepoSpec(f"workspace_path {repo.workspace_path!r} is used twice")
        seen.add(repo.workspace_path)
    if "." in seen and len(repos) > 1:
        raise InvalidRepoSpec("workspace_path '.' is only allowed with a single repo")
    # One repo may not sit inside another's folder.
    for a in seen:
        for b in seen:
            if a != b and a != "." and b.startswith(a + "/"):
                raise InvalidRepoSpec(f"workspace_path {b!r} is inside {a!r}")


def is_reserved_env_key(key: str) -> bool:
    return key in _RESERVED_KEYS or key.startswith(_RESERVED_PREFIXES)


def check_env(env: dict[str, str]) -> None:
    if len(env) > MAX_ENV_KEYS:
        raise LimitsExceeded(f"at most {MAX_ENV_KEYS} env keys", count=len(env))
    total = 0
    for key, value in env.items():
        if not _ENV_KEY.match(key):
            raise InvalidRequest(f"env key {key[:100]!r} is not a valid name", field="env")
        if is_reserved_env_key(key):
            raise ReservedEnvKey(f"env key {key} is reserved; use the dedicated field", key=key)
        total += len(key) + len(value.encode())
    if total > MAX_ENV_BYTES:
        raise LimitsExceeded("env exceeds 1 MiB", bytes=total)


def check_relative_path(path: str, *, what: str) -> None:
    """A path that must stay inside its folder: relative, no `..`, not in `.git/`."""
    if not path or len(path) > MAX_SECRET_PATH:
        raise UnsafePath(f"{what} must be 1-{MAX_SECRET_PATH} characters")
    if path.startswith("/") or path.startswith("~") or "\\" in path or "\x00" in path:
        raise UnsafePath(f"{what} must be relative")
    parts = PurePosixPath(path).parts
    if any(p == ".." for p in path.split("/")):
        raise UnsafePath(f"{what} must not contain '..'")
    if ".git" in parts:
        raise UnsafePath(f"{what} must not be inside .git/")
    if path.endswith("/") or not parts:
        raise UnsafePath(f"{what} must name a file")


def check_secret_files(files: list[SecretFile], workspace_paths: set[str] | None = None) -> None:
    if len(files) > MAX_SECRET_FILES:
        raise LimitsExceeded(f"at most {MAX_SECRET_FILES} secret files", count=len(files))
    total = 0
    for f in files:
        if f.workspace_path.startswith("/") or ".." in f.workspace_path.split("/"):
            raise UnsafePath("secret file workspace_path must be relative")
        check_workspace_path_unsafe(f.workspace_path)
        check_relative_path(f.file_path, what="secret file path")
        total += len(f.content)
    if total > MAX_SECRET_BYTES:
        raise LimitsExceeded("secret files exceed 1 MiB in total", bytes=total)


def check_workspace_path_unsafe(path: str) -> None:
    try:
        check_workspace_path(path or ".")
    except InvalidRepoSpec as exc:
        raise UnsafePath(exc.message) from None


def check_commands(commands: list[Command], *, limit: int, what: str, named: bool) -> None:
    if len(commands) > limit:
        raise LimitsExceeded(f"at most {limit} {what}", count=len(commands))
    for cmd in commands:
        if named and not SERVICE_NAME.match(cmd.name):
            raise InvalidRequest(
                f"{what} name {cmd.name[:100]!r} must match [A-Za-z0-9][A-Za-z0-9_.-]{{0,99}}"
            )
        if not cmd.command or len(cmd.command) > MAX_COMMAND_CHARS:
            raise InvalidRequest(f"{what} command must be 1-{MAX_COMMAND_CHARS} characters")
        if cmd.cwd:
            check_relative_cwd(cmd.cwd)
        check_workspace_path_unsafe(cmd.workspace_path or ".")


def check_relative_cwd(cwd: str) -> None:
    if cwd.startswith("/") or ".." in cwd.split("/") or len(cwd) > 500:
        raise UnsafePath("cwd must be relative without '..'")


def check_trigger_context(raw: bytes) -> None:
    if len(raw) > MAX_TRIGGER_CONTEXT:
        raise LimitsExceeded("trigger context exceeds 1 MiB")
    try:
        json.loads(raw)
    except ValueError:
        raise InvalidRequest("trigger_context_json is not JSON", field="trigger_context_json") from None


def check_prompt_mode(mode: str) -> None:
    if mode not in PROMPT_MODES:
        raise InvalidRequest(f"unknown prompt_mode {mode[:50]!r}", field="prompt_mode")


def check_argv(argv: list[str]) -> None:
    if not argv or not argv[0]:
        raise InvalidRequest("argv is empty", field="argv")
    if sum(len(a.encode()) + 1 for a in argv) > MAX_EXEC_ARGV_BYTES:
        raise LimitsExceeded("argv exceeds 64 KiB")
    if any("\x00" in a for a in argv):
        raise InvalidRequest("argv holds a NUL byte", field="argv")


def exec_timeout(seconds: int) -> int:
    if seconds < 0:
        raise InvalidRequest("timeout_seconds must be positive", field="timeout_seconds")
    if seconds == 0:
        return EXEC_DEFAULT_TIMEOUT
    if seconds > EXEC_MAX_TIMEOUT:
        raise LimitsExceeded(f"timeout_seconds is at most {EXEC_MAX_TIMEOUT}")
    return seconds


def resolve_in_home(path: str, home: str, *, default: str) -> str:
    """A sandbox path inside `home`: absolute `/home/user/…` (the logical home) or relative to
    `default`; `..` may not leave the home."""
    logical_home = "/home/user"
    if not path:
        path = default
    elif path.startswith(logical_home + "/") or path == logical_home:
        path = home + path[len(logical_home) :]
    elif not path.startswith("/"):
        path = f"{default.rstrip('/')}/{path}"
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafePath("path leaves the sandbox home")
            parts.pop()
            continue
        parts.append(part)
    normalized = "/" + "/".join(parts)
    if normalized != home and not normalized.startswith(home.rstrip("/") + "/"):
        raise UnsafePath("path must stay inside the sandbox home")
    return normalized
