"""The service manager (sandbox-provider.md §5.7): named long-running processes and the exposed port.

Starting a name first kills that name's previous process group; the command runs as `bash -c` in a new
session with the sandbox env and `FORCE_COLOR=1`, appending to `logs/<name>.log` after a start marker.
Exit 0 → `stopped`, anything else → `error`. State survives in `services.json`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any, Literal

import msgspec
from proliferate.sandbox_mcp.layout import SERVICE_NAME_RE, open_log, write_atomic
from proliferate.sandbox_mcp.runtime import Runtime, kill_group, now_iso

ServiceStatus = Literal["running", "stopped", "error"]
STOP_GRACE_S = 5.0


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ServiceState(msgspec.Struct):
    name: str
    command: str
    cwd: str | None = None
    status: ServiceStatus = "stopped"
    pid: int | None = None
    started_at: str | None = None
    exit_code: int | None = None


class ServicesFile(msgspec.Struct):
    services: dict[str, ServiceState] = {}
    exposed_port: int | None = None


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not SERVICE_NAME_RE.match(name):
        raise ServiceError(400, "invalid_service_name", "service names are [A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
    return name


class ServiceManager:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self.state = self._load()

    def _load(self) -> ServicesFile:
        try:
            state = msgspec.json.decode(self._rt.layout.services_json.read_bytes(), type=ServicesFile)
        except (FileNotFoundError, msgspec.DecodeError):
            return ServicesFile()
        # A new supervisor (restored snapshot, restarted sandbox) owns none of the old processes.
        for s in state.services.values():
            if s.status == "running":
                s.status, s.pid = "stopped", None
        return state

    def _save(self) -> None:
        write_atomic(self._rt.layout.services_json, msgspec.json.encode(self.state))

    def list_all(self) -> dict[str, Any]:
        return {
            "services": [
                msgspec.to_builtins(s) for s in sorted(self.state.services.values(), key=lambda s: s.name)
            ],
            "exposed_port": self.state.exposed_port,
        }

    def get(self, name: str) -> ServiceState | None:
        return self.state.services.get(name)

    async def start(self, name: str, command: str, cwd: str | None = None) -> ServiceState:
        validate_name(name)
        if not isinstance(command, str) or not command.strip() or len(command) > 10_000:
            raise ServiceError(400, "invalid_command", "command must be a non-empty string")
        try:
            workdir = self._rt.layout.inside_home(cwd)
        except ValueError as exc:
            raise ServiceError(400, "invalid_cwd", str(exc)) from None
        if not workdir.is_dir():
            raise ServiceError(400, "invalid_cwd", f"{cwd!r} is not a directory")
        async with self._lock:
            await self._stop_locked(name)
            log = self._rt.layout.service_log(name)
            with open_log(log, f"{now_iso()} starting {name}: {command}") as out:
                proc = await asyncio.create_subprocess_exec(
                    "bash",
                    "-c",
                    command,
                    cwd=workdir,
                    env=self._rt.child_env({"FORCE_COLOR": "1"}),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    start_new_session=True,
                )
            state = ServiceState(name, command, cwd, "running", proc.pid, now_iso(), None)
            self.state.services[name] = state
            self._procs[name] = proc
            self._save()
        task = asyncio.create_task(self._watch(name, proc))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return state

    async def _watch(self, name: str, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        async with self._lock:
            if self._procs.get(name) is not proc:
                return  # replaced or stopped: that path recorded the state
            del self._procs[name]
            state = self.state.services[name]
            state.status, state.exit_code, state.pid = ("stopped" if code == 0 else "error"), code, None
            self._save()

    async def stop(self, name: str) -> ServiceState:
        validate_name(name)
        async with self._lock:
            if name not in self.state.services:
                raise ServiceError(404, "service_not_found", f"no service named {name}")
            await self._stop_locked(name)
            return self.state.services[name]

    async def _stop_locked(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is not None and proc.returncode is None:
            kill_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
            except TimeoutError:
                kill_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        if proc is not None:
            kill_group(proc.pid, signal.SIGKILL)  # stragglers left in the group
        state = self.state.services.get(name)
        if state is not None:
            state.status, state.pid = "stopped", None
            state.exit_code = proc.returncode if proc is not None else state.exit_code
            self._save()

    def expose(self, port: object) -> int:
        reserved = self._rt.config.reserved_ports() if self._rt.config else frozenset()
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535 or port in reserved:
            raise ServiceError(
                400, "invalid_port", "port must be 1-65535 and not one of the sandbox's own ports"
            )
        self.state.exposed_port = port
        self._save()
        return port

    async def close(self) -> None:
        for name in list(self._procs):
            async with self._lock:
                await self._stop_locked(name)
        for task in list(self._watchers):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
