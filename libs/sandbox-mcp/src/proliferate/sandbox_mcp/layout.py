"""Where things are inside a sandbox (CONTRACT.md) and what `supervisor.json` says.

`HOME` is `/home/user` on Modal, E2B and bubblewrapped local sandboxes and the real directory under
local `process` isolation; `TMP` is `/tmp` or the sandbox's own tmp. Every path the runtime touches is
derived here, so nothing else hard-codes `/home/user`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO, Literal

import msgspec

SERVICE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# Ports a preview may never be routed to (sandbox-provider.md §7), plus the sandbox's own ports.
RESERVED_PORTS = frozenset({22, 2375, 2376, 3901, 4000, 4096, 20000})
PREVIEW_FALLBACK_PORTS = (3000, 5173, 8000, 4321)


class Ports(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    router: int = 20000
    agent: int = 4096
    api: int = 4000
    vscode: int = 3901


class ProcessConfig(msgspec.Struct, frozen=True):
    name: str
    argv: list[str]
    restart: Literal["always", "on_failure", "never"] = "always"
    ready_http_path: str | None = None
    cwd: str | None = None
    env: dict[str, str] = {}
    port: int | None = None  # readiness port; `agent`/`vscode` default to their ports


class CommandConfig(msgspec.Struct, frozen=True):
    name: str
    command: str
    cwd: str | None = None


class RestartPolicy(msgspec.Struct, frozen=True):
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    max_restarts: int = 5
    window_s: float = 300.0


class SupervisorConfig(msgspec.Struct, frozen=True):
    contract_version: int = 1
    ports: Ports = Ports()
    processes: list[ProcessConfig] = []
    setup_commands: list[CommandConfig] = []
    service_commands: list[CommandConfig] = []
    autostart_services: bool = False
    router_host: str = "0.0.0.0"
    # Local sandboxes on the host network must not guess preview ports other sandboxes may own.
    preview_fallback: bool = True
    restart_policy: RestartPolicy = RestartPolicy()
    setup_timeout_s: float = 600.0

    def process_port(self, p: ProcessConfig) -> int | None:
        if p.port is not None:
            return p.port
        return {"agent": self.ports.agent, "vscode": self.ports.vscode}.get(p.name)

    def reserved_ports(self) -> frozenset[int]:
        return RESERVED_PORTS | {self.ports.router, self.ports.agent, self.ports.api, self.ports.vscode}


class Layout:
    """The sandbox's paths for one `HOME` and `TMP`."""

    def __init__(self, home: Path, tmp: Path) -> None:
        self.home = home.resolve()
        self.tmp = tmp.resolve()

    @classmethod
    def from_env(cls) -> Layout:
        home = os.environ.get("PROLIFERATE_HOME") or os.environ.get("HOME") or "/home/user"
        tmp = os.environ.get("PROLIFERATE_TMP") or os.environ.get("TMPDIR") or "/tmp"  # noqa: S108
        return cls(Path(home), Path(tmp))

    @property
    def workspace(self) -> Path:
        return self.home / "workspace"

    @property
    def state_dir(self) -> Path:
        return self.home / ".proliferate"

    @property
    def supervisor_json(self) -> Path:
        return self.state_dir / "supervisor.json"

    @property
    def boot_status_json(self) -> Path:
        return self.state_dir / "boot-status.json"

    @property
    def metadata_json(self) -> Path:
        return self.state_dir / "metadata.json"

    @property
    def previews_json(self) -> Path:
        return self.state_dir / "previews.json"

    @property
    def runtime_dir(self) -> Path:
        return self.tmp / "proliferate"

    @property
    def session_env(self) -> Path:
        return self.runtime_dir / "session.env"

    @property
    def git_credentials(self) -> Path:
        return self.runtime_dir / "git-credentials.json"

    @property
    def services_json(self) -> Path:
        return self.runtime_dir / "services.json"

    @property
    def logs_dir(self) -> Path:
        return self.runtime_dir / "logs"

    @property
    def process_logs_dir(self) -> Path:
        return self.runtime_dir / "process-logs"

    def service_log(self, name: str) -> Path:
        if not SERVICE_NAME_RE.match(name):
            raise ValueError(f"invalid service name {name!r}")
        return self.logs_dir / f"{name}.log"

    def inside_home(self, raw: str | None, *, base: Path | None = None) -> Path:
        """`raw` (relative to `base`, default the workspace) resolved with symlinks; must stay in HOME."""
        target = (base or self.workspace) if not raw else Path(raw).expanduser()
        if not target.is_absolute():
            target = (base or self.workspace) / target
        resolved = target.resolve()
        if resolved != self.home and self.home not in resolved.parents:
            raise ValueError(f"{raw!r} leaves the sandbox home")
        return resolved

    def load_config(self) -> SupervisorConfig:
        return msgspec.json.decode(self.supervisor_json.read_bytes(), type=SupervisorConfig)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write via a temp file and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def open_log(path: Path, marker: str) -> BinaryIO:
    """Append mode, with a start marker line, for a child's stdout/stderr (the caller closes it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "ab")  # noqa: SIM115 - handed to a subprocess, closed by the caller
    f.write(f"\n=== [proliferate] {marker}\n".encode())
    f.flush()
    return f


def read_from(path: Path, offset: int) -> bytes:
    """Everything after `offset` (empty when the file is absent)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


def prepare_socket(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
