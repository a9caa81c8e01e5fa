"""`make dev`: the whole platform on one machine, under one supervisor.

1. Postgres and NATS: the given `DATABASE_URL` (an administrator URL: roles and schemas are
   provisioned with it) / `NATS_URL`, or embedded servers whose data lives under `.dev/`
   (a second run reuses it).
2. Every service schema is provisioned and migrated.
3. Every service starts as a child process; each log line is prefixed with its service.
4. When the gateway's `/readyz` says all ten services are SERVING, the URL is printed.
5. Ctrl-C (SIGINT) or SIGTERM stops everything, children first, and leaves no process.

Services extend the launcher without editing it: an optional module `proliferate.<service>.dev`
may define any of
    dev_environment(ctx: DevContext) -> dict[str, dict[str, str]]   # service -> extra env
    dev_processes(ctx: DevContext) -> list[DevProcess]              # helper processes, started first
    async dev_after_start(ctx: DevContext) -> list[str]             # lines printed once all serve
(`DevContext.state` keeps generated dev secrets under .dev/ so a second run reuses them.)
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from proliferate.devkit.infra import EmbeddedNats, EmbeddedPostgres, free_port, port_is_free
from proliferate.devkit.paths import dev_dir
from proliferate.devkit.platform import PlatformDatabase
from proliferate.kit.topology import HTTP_SERVICES, SERVICES

READY_TIMEOUT_S = 120.0
STOP_GRACE_S = 15.0
_COLORS = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96]


class Console:
    def __init__(self) -> None:
        self.tty = sys.stdout.isatty() and os.environ.get("NO_COLOR") is None
        self.raw = os.environ.get("PROLIFERATE_DEV_RAW_LOGS") == "1"
        self.width = max(len(s) for s in SERVICES)

    def step(self, text: str) -> None:
        self._print(f"▶ {text}")

    def done(self, text: str) -> None:
        self._print(f"✓ {text}")

    def fail(self, text: str) -> None:
        self._print(f"✗ {text}")

    def service_line(self, service: str, line: str) -> None:
        label = service.ljust(self.width)
        if self.tty:
            color = _COLORS[SERVICES.index(service) % len(_COLORS)] if service in SERVICES else 37
            label = f"\x1b[{color}m{label}\x1b[0m"
        self._print(f"{label} | {line if self.raw else _humanize(line)}")

    def _print(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _humanize(line: str) -> str:
    """`{"level": "info", "event": "x", ...}` → `info  x key=value ...` for people."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "event" not in record:
        return line
    level = str(record.pop("level", "")).ljust(7)
    event = record.pop("event")
    for key in ("timestamp", "service", "logger"):
        record.pop(key, None)
    exception = record.pop("exception", None)
    rest = " ".join(f"{k}={v}" for k, v in record.items())
    text = f"{level} {event} {rest}".rstrip()
    return f"{text}\n{exception}" if exception else text


@dataclass
class DevState:
    """Secrets of this dev installation, kept under .dev/ so a second run reuses its data."""

    path: Path
    values: dict[str, str] = field(default_factory=dict)

    def get_or_create(self, key: str, make: Callable[[], str]) -> str:
        if key not in self.values:
            self.values[key] = make()
            self.path.write_text(json.dumps(self.values, indent=2))
            self.path.chmod(0o600)
        return self.values[key]

    @classmethod
    def load(cls, path: Path) -> DevState:
        values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        state = cls(path, values)
        changed = False
        for key, size in (("password_seed", 24), ("service_auth_secret", 48)):
            if key not in values:
                values[key] = secrets.token_urlsafe(size)
                changed = True
        if changed:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values, indent=2))
            path.chmod(0o600)
        return state


@dataclass
class DevProcess:
    """A helper process a service needs in development (e.g. a scripted model server)."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None  # polled until it answers < 500 before services start


@dataclass
class DevContext:
    dev_dir: Path
    state: DevState
    gateway_url: str
    grpc_addresses: dict[str, str]
    http_ports: dict[str, int]
    env: dict[str, dict[str, str]] = field(default_factory=dict)  # filled before dev_after_start
    _ports: dict[str, int] = field(default_factory=dict)

    def secret(self, key: str, make: Callable[[], str]) -> str:
        """A value generated once and kept in .dev/secrets.json."""
        return self.state.get_or_create(key, make)

    def port(self, name: str) -> int:
        """A free port for `name`, the same one for the whole run."""
        if name not in self._ports:
            self._ports[name] = free_port()
        return self._ports[name]


def _hooks() -> dict[str, Any]:
    found = {}
    for service in SERVICES:
        spec = importlib.util.find_spec(f"proliferate.{service}.dev")
        if spec is not None:
            found[service] = importlib.import_module(f"proliferate.{service}.dev")
    return found


@dataclass
class Child:
    service: str
    process: asyncio.subprocess.Process
    pump: asyncio.Task[None]
    restarts: int = 0


class Launcher:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.root = dev_dir()
        self.pg: EmbeddedPostgres | None = None
        self.nats: EmbeddedNats | None = None
        self.children: dict[str, Child] = {}
        self.helpers: list[Child] = []
        self.env: dict[str, dict[str, str]] = {}
        self.stopping = asyncio.Event()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        try:
            started = asyncio.create_task(self._start())
            stop = asyncio.create_task(self.stopping.wait())
            done, _ = await asyncio.wait({started, stop}, return_when=asyncio.FIRST_COMPLETED)
            if started in done and started.exception() is None:
                await self._supervise()
            elif started not in done:
                started.cancel()
                with contextlib.suppress(BaseException):
                    await started
            else:
                self.console.fail(str(started.exception()))
                return 1
            return 0
        finally:
            await self._shutdown()

    async def _start(self) -> None:
        t0 = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        state = DevState.load(self.root / "secrets.json")
        admin_url = await self._postgres()
        nats_url = await self._nats()
        database = PlatformDatabase(
            admin_url, os.environ.get("DATABASE_NAME", "proliferate"), state.values["password_seed"]
        )
        self.console.step("migrating every service schema")
        await asyncio.to_thread(database.create_database)
        await asyncio.to_thread(database.migrate)
        self.console.done("schemas migrated")
        gateway_port = int(os.environ.get("GATEWAY_PORT", "8080"))
        if not port_is_free(gateway_port):
            raise RuntimeError(f"port {gateway_port} is in use: set GATEWAY_PORT to another port")
        self.env = self._service_env(database, nats_url, state, gateway_port)
        hooks = _hooks()
        ctx = DevContext(
            dev_dir=self.root,
            state=state,
            gateway_url=f"http://127.0.0.1:{gateway_port}",
            grpc_addresses={s: self.env[s][f"{s.upper()}_GRPC_ADDRESS"] for s in SERVICES},
            http_ports={s: int(self.env[s][f"{s.upper()}_PORT"]) for s in HTTP_SERVICES},
        )
        for module in hooks.values():
            if hasattr(module, "dev_environment"):
                for service, extra in module.dev_environment(ctx).items():
                    self.env[service].update(extra)
        for module in hooks.values():
            for process in getattr(module, "dev_processes", lambda _: [])(ctx):
                await self._spawn_helper(process)
        self.console.step(f"starting {len(SERVICES)} services")
        for service in SERVICES:
            await self._spawn(service)
        await self._wait_ready(gateway_port)
        ctx.env = self.env
        for module in hooks.values():
            if hasattr(module, "dev_after_start"):
                for line in await module.dev_after_start(ctx):
                    self.console.done(line)
        self.console.done(f"Proliferate is running in {time.monotonic() - t0:.1f}s")
        self.console.done(f"gateway: http://127.0.0.1:{gateway_port}   (Ctrl-C stops everything)")

    async def _postgres(self) -> str:
        given = os.environ.get("DATABASE_URL")
        if given:
            self.console.done("using Postgres at DATABASE_URL")
            return given
        self.console.step("starting embedded Postgres (.dev/postgres)")
        self.pg = EmbeddedPostgres(self.root / "postgres", port=_saved_port(self.root / "postgres.port"))
        await asyncio.to_thread(self.pg.start)
        (self.root / "postgres.port").write_text(str(self.pg.port))
        self.console.done(f"Postgres on 127.0.0.1:{self.pg.port}")
        return self.pg.admin_url

    async def _nats(self) -> str:
        given = os.environ.get("NATS_URL")
        if given:
            self.console.done("using NATS at NATS_URL")
            return given
        self.console.step("starting embedded NATS with JetStream (.dev/nats)")
        self.nats = EmbeddedNats(self.root / "nats", port=_saved_port(self.root / "nats.port"))
        await asyncio.to_thread(self.nats.start)
        (self.root / "nats.port").write_text(str(self.nats.port))
        self.console.done(f"NATS on 127.0.0.1:{self.nats.port}")
        return self.nats.url

    def _service_env(
        self, database: PlatformDatabase, nats_url: str, state: DevState, gateway_port: int
    ) -> dict[str, dict[str, str]]:
        grpc_ports = {service: free_port() for service in SERVICES}
        common = {
            "NATS_URL": nats_url,
            "PROLIFERATE_DEV_DIR": str(self.root),
            "SERVICE_AUTH_SECRET": state.values["service_auth_secret"],
            "PROLIFERATE_ENV": "dev",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "info"),
            "GATEWAY_PORT": str(gateway_port),
            "PYTHONUNBUFFERED": "1",
            **{f"{s.upper()}_GRPC_ADDRESS": f"127.0.0.1:{p}" for s, p in grpc_ports.items()},
        }
        for service in HTTP_SERVICES:
            if service != "gateway":
                common[f"{service.upper()}_PORT"] = os.environ.get(f"{service.upper()}_PORT") or str(
                    free_port()
                )
        base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
        return {
            service: {
                **base,
                **common,
                "DATABASE_URL": database.service_url(service),
                "GRPC_PORT": str(grpc_ports[service]),
            }
            for service in SERVICES
        }

    async def _spawn_helper(self, helper: DevProcess) -> None:
        self.console.step(f"starting {helper.name}")
        process = await self._start_process(helper.argv, {**os.environ, **helper.env})
        pump = asyncio.create_task(self._pump(helper.name, process))
        self.helpers.append(Child(helper.name, process, pump))
        if helper.ready_url is not None:
            await self._wait_helper(helper, process)
        self.console.done(f"{helper.name} running")

    async def _wait_helper(self, helper: DevProcess, process: asyncio.subprocess.Process) -> None:
        assert helper.ready_url is not None
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if process.returncode is not None:
                    raise RuntimeError(f"{helper.name} exited with {process.returncode} while starting")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(helper.ready_url)).status_code < 500:
                        return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{helper.name} did not answer {helper.ready_url} within 60s")

    async def _start_process(self, argv: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
        setpriv = shutil.which("setpriv")
        prefix = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
        return await asyncio.create_subprocess_exec(
            *prefix,
            *argv,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )

    async def _spawn(self, service: str, restarts: int = 0) -> None:
        process = await self._start_process(
            [sys.executable, "-m", f"proliferate.{service}"], self.env[service]
        )
        pump = asyncio.create_task(self._pump(service, process))
        self.children[service] = Child(service, process, pump, restarts)

    async def _pump(self, service: str, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            self.console.service_line(service, raw.decode(errors="replace").rstrip())

    async def _wait_ready(self, gateway_port: int) -> None:
        url = f"http://127.0.0.1:{gateway_port}/readyz"
        deadline = time.monotonic() + READY_TIMEOUT_S
        serving: set[str] = set()
        async with httpx.AsyncClient(timeout=3.0) as client:
            while time.monotonic() < deadline:
                for service, child in self.children.items():
                    if child.process.returncode is not None:
                        raise RuntimeError(f"{service} exited with {child.process.returncode} while starting")
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    response = await client.get(url)
                    checks: dict[str, Any] = response.json().get("checks", {})
                    for service, status in checks.items():
                        if status == "SERVING" and service not in serving:
                            serving.add(service)
                            self.console.done(f"{service} serving ({len(serving)}/{len(SERVICES)})")
                    if response.status_code == 200:
                        return
                await asyncio.sleep(0.5)
        missing = sorted(set(SERVICES) - serving)
        raise RuntimeError(f"not ready after {READY_TIMEOUT_S:.0f}s; not serving: {', '.join(missing)}")

    async def _supervise(self) -> None:
        """Wait for a stop signal; restart a service that dies (at most 5 times)."""
        while not self.stopping.is_set():
            waits = {asyncio.create_task(c.process.wait()): s for s, c in self.children.items()}
            stop = asyncio.create_task(self.stopping.wait())
            done, pending = await asyncio.wait({*waits, stop}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if stop in done:
                return
            for task in done:
                service = waits[task]
                child = self.children[service]
                code = child.process.returncode
                if child.restarts >= 5:
                    self.console.fail(f"{service} exited with {code}; gave up after 5 restarts")
                    self.stopping.set()
                    return
                self.console.fail(f"{service} exited with {code}; restarting")
                await asyncio.sleep(min(2**child.restarts, 10))
                await self._spawn(service, child.restarts + 1)

    async def _shutdown(self) -> None:
        if self.children:
            self.console.step("stopping services")
        await self._stop_all(list(self.children.values()))
        await self._stop_all(self.helpers)
        if self.nats is not None:
            await asyncio.to_thread(self.nats.stop)
        if self.pg is not None:
            await asyncio.to_thread(self.pg.stop)
        if self.children or self.pg or self.nats:
            self.console.done("stopped")

    async def _stop_all(self, children: list[Child]) -> None:
        for child in children:
            if child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in children:
            remaining = max(deadline - time.monotonic(), 0.1)
            try:
                await asyncio.wait_for(child.process.wait(), remaining)
            except TimeoutError:
                self.console.fail(f"{child.service} did not stop in {STOP_GRACE_S:.0f}s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                await child.process.wait()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(child.pump, 2)


def _saved_port(path: Path) -> int:
    """The port a previous run used, when it is still free (so URLs stay stable)."""
    with contextlib.suppress(ValueError, OSError):
        port = int(path.read_text().strip())
        if port_is_free(port):
            return port
    return 0


def main() -> None:
    console = Console()
    launcher = Launcher(console)
    raise SystemExit(asyncio.run(launcher.run()))


if __name__ == "__main__":
    main()
