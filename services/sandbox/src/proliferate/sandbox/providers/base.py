"""The provider interface (sandbox-provider.md §4.1): primitives and capabilities.

Providers are stateless: every method gets what it needs (`ProviderSandbox`, an artifact
reference) from its caller, which keeps the state in the `sandbox` schema. They never
decide policy (which source to boot from, when to scrub): the boot pipeline does.

Paths handed to a provider are *sandbox paths* (what a process inside sees: `/home/user/…`,
`/tmp/…`); `ProviderSandbox.home_dir` tells the pipeline where the home is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from proliferate.sandbox.redaction import redact

EXEC_OUTPUT_CAP = 16 * 1024
TRUNCATED_MARKER = "...[truncated]"
ROUTER_PORT = 20000
AGENT_PORT = 4096
API_PORT = 4000
VSCODE_PORT = 3901
DEFAULT_HOME = "/home/user"


class ProviderKind(StrEnum):
    MODAL = "modal"
    E2B = "e2b"
    LOCAL = "local"


class ArtifactKind(StrEnum):
    FILESYSTEM = "filesystem"
    PAUSE = "pause"
    MEMORY = "memory"
    BASE = "base"


@dataclass(frozen=True)
class Capabilities:
    pause: bool = False
    auto_pause: bool = False
    memory_snapshot: bool = False
    docker: bool = False
    vscode: bool = False

    def supports(self, kind: ArtifactKind) -> bool:
        if kind is ArtifactKind.PAUSE:
            return self.pause
        if kind is ArtifactKind.MEMORY:
            return self.memory_snapshot
        return True


@dataclass(frozen=True)
class Ports:
    """Where the in-sandbox processes listen (fixed inside isolated sandboxes)."""

    router: int = ROUTER_PORT
    agent: int = AGENT_PORT
    api: int = API_PORT
    vscode: int = VSCODE_PORT

    def as_dict(self) -> dict[str, int]:
        return {"router": self.router, "agent": self.agent, "api": self.api, "vscode": self.vscode}


@dataclass(frozen=True)
class ArtifactRef:
    """A snapshot artifact as a provider needs it to restore or delete."""

    id: str
    kind: ArtifactKind
    provider_ref: str
    sha256: str | None = None
    size_bytes: int | None = None


@dataclass(frozen=True)
class CreateRequest:
    sandbox_id: str
    purpose: str  # session | base_build
    timeout_s: int
    source: ArtifactRef | None = None  # None = the raw OS image (with the base layer)
    labels: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)  # non-secret process env at start
    port_base: int | None = None  # allocated by the service for providers with `placement`


@dataclass(frozen=True)
class Placement:
    """Host-bound providers (local): the host, its port range and its sandbox limit. The
    service allocates port blocks and counts sandboxes in the database, under a host lock."""

    host_id: str
    port_low: int
    port_high: int
    block_size: int
    max_sandboxes: int


@dataclass(frozen=True)
class ProviderSandbox:
    sandbox_id: str
    provider_sandbox_id: str
    home_dir: str = DEFAULT_HOME
    tmp_dir: str = "/tmp"  # noqa: S108 - the sandbox's own /tmp
    ports: Ports = field(default_factory=Ports)
    isolation: str | None = None
    host_id: str | None = None
    port_base: int | None = None
    paused: bool = False
    created_at: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SandboxRef:
    """What the `sandboxes` row knows about a provider sandbox."""

    sandbox_id: str
    provider_sandbox_id: str
    isolation: str | None = None
    host_id: str | None = None
    port_base: int | None = None


@dataclass(frozen=True)
class Endpoints:
    preview_url: str  # the router; no secret in it

    @property
    def opencode_url(self) -> str:
        return self.preview_url.rstrip("/") + "/_proliferate/agent"


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def timed_out(self) -> bool:
        return self.exit_code == 124

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class FileWrite:
    path: str  # sandbox path
    content: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class ReadLimits:
    max_files: int = 100
    max_file_bytes: int = 10 * 1024 * 1024
    max_total_bytes: int = 50 * 1024 * 1024

    def skip_reason(self, files_read: int, bytes_read: int, size: int) -> str | None:
        """Why a file of `size` bytes is skipped after `files_read` files of `bytes_read` bytes."""
        if files_read >= self.max_files:
            return "max_files"
        if size > self.max_file_bytes:
            return "max_file_bytes"
        if bytes_read + size > self.max_total_bytes:
            return "max_total_bytes"
        return None


@dataclass(frozen=True)
class FileChunk:
    path: str  # relative to the folder read
    data: bytes = b""
    offset: int = 0
    eof: bool = True
    size: int = 0
    skipped: bool = False
    skip_reason: str = ""


@dataclass(frozen=True)
class ProviderArtifact:
    kind: ArtifactKind
    provider_ref: str
    size_bytes: int | None = None
    sha256: str | None = None
    expires_at: datetime | None = None
    # The sandbox a memory restore produced, when the kind restores "as a new row".
    retained: bool = False


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str = ""


class ProviderError(Exception):
    """Any failure of a provider call; the message is redacted at construction."""

    def __init__(self, provider: str, operation: str, message: str, *, retryable: bool) -> None:
        self.provider = provider
        self.operation = operation
        self.retryable = retryable
        self.message = redact(message)
        super().__init__(f"{provider} {operation}: {self.message}")


class CapabilityUnsupported(ProviderError):
    def __init__(self, provider: str, operation: str) -> None:
        super().__init__(provider, operation, f"{operation} is not supported by {provider}", retryable=False)


class SandboxGone(ProviderError):
    """The provider says the sandbox does not exist (any more)."""

    def __init__(self, provider: str, operation: str, message: str = "sandbox not found") -> None:
        super().__init__(provider, operation, message, retryable=False)


class ArtifactUnusable(ProviderError):
    """The artifact cannot be restored: missing, expired or corrupt (`detail`)."""

    def __init__(self, provider: str, detail: str, message: str) -> None:
        super().__init__(provider, "restore", message, retryable=False)
        self.detail = detail


@runtime_checkable
class SandboxProvider(Protocol):
    kind: ProviderKind
    namespace: str
    capabilities: Capabilities
    isolation: str | None
    placement: Placement | None
    supports_base_snapshots: bool

    async def create(self, req: CreateRequest) -> ProviderSandbox: ...

    def handle(self, ref: SandboxRef) -> ProviderSandbox:
        """The handle of a known sandbox, without any I/O (paths, ports)."""
        ...

    async def find(self, sandbox_id: str, provider_sandbox_id: str | None) -> ProviderSandbox | None: ...

    async def endpoints(self, ps: ProviderSandbox) -> Endpoints: ...

    async def exec(
        self,
        ps: ProviderSandbox,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: int = 30,
    ) -> ExecResult: ...

    async def write_files(self, ps: ProviderSandbox, files: Sequence[FileWrite]) -> None: ...

    def read_files(
        self, ps: ProviderSandbox, folder: str, limits: ReadLimits
    ) -> AsyncIterator[FileChunk]: ...

    async def read_file(self, ps: ProviderSandbox, path: str, max_bytes: int) -> bytes | None: ...

    async def remove_files(self, ps: ProviderSandbox, paths: Sequence[str]) -> None: ...

    async def snapshot(self, ps: ProviderSandbox, kind: ArtifactKind) -> ProviderArtifact: ...

    async def resume(self, ps: ProviderSandbox) -> ProviderSandbox: ...

    async def terminate(self, ps: ProviderSandbox) -> None: ...

    async def list_alive(self, refs: Sequence[ProviderSandbox]) -> set[str]: ...

    async def list_owned(self) -> list[ProviderSandbox]: ...

    async def over_limits(self, refs: Sequence[ProviderSandbox]) -> dict[str, str]:
        """Sandboxes over this provider's resource limits (sandbox id → why), for the reaper."""
        ...

    async def delete_artifact(self, art: ArtifactRef) -> None: ...

    async def health(self) -> Health: ...


def cap_output(text: str, cap: int = EXEC_OUTPUT_CAP) -> tuple[str, bool]:
    """`text` cut to `cap` bytes (UTF-8) with the truncation marker, and whether it was cut."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= cap:
        return text, False
    return raw[:cap].decode("utf-8", "ignore") + TRUNCATED_MARKER, True
