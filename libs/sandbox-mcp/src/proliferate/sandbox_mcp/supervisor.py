"""The in-sandbox supervisor: the sandbox's root process (CONTRACT.md "Starting it").

It answers the exec socket at once, then waits until both `supervisor.json` and `session.env` exist,
serves the API and the router, starts `processes` (restarting them with backoff 1 s → 30 s, giving
up after 5 restarts in 5 min, reported in `/api/boot`), and runs phase 2 (setup commands, then the
service commands when `autostart_services`). A changed `session.env` swaps the API token and
restarts the agent; a vanished one (the scrub during a snapshot) changes nothing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from proliferate.sandbox_mcp.api import create_api_app
from proliferate.sandbox_mcp.envfile import read_env_file
from proliferate.sandbox_mcp.execsock import create_exec_app
from proliferate.sandbox_mcp.layout import CommandConfig, Layout, ProcessConfig, open_log, prepare_socket
from proliferate.sandbox_mcp.router import create_router_app
from proliferate.sandbox_mcp.runtime import Runtime, kill_group, now_iso
from proliferate.sandbox_mcp.services import ServiceError, ServiceManager
from proliferate.sandbox_mcp.supervisor_auth import agent_auth_headers, agent_env

POLL_S = 0.2
STOP_GRACE_S = 10.0
# A probe that lands while OpenCode is still starting may never be answered, and a loaded
# machine answers late: probes overlap (a new one every interval, each with a long timeout,
# the first answer wins), so neither a lost probe nor a slow answer delays readiness.
READY_PROBE_TIMEOUT_S = 5.0
READY_PROBE_INTERVAL_S = 0.1
READY_PROBE_FAST_WINDOW_S = 10.0  # then, for a slow start, intervals grow to 1 s
READY_PROBE_MAX_OUTSTANDING = 16


class ProcessRunner:
    """One supervised process: spawn, wait, restart per policy with backoff, give up when crash-looping."""

    def __init__(self, rt: Runtime, spec: ProcessConfig) -> None:
        self.rt, self.spec = rt, spec
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts: collections.deque[float] = collections.deque()
        self.total_restarts = 0
        self._stopping = False
        self._requested = False  # a restart asked for (new env) is not a crash
        self._wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"process:{self.spec.name}")

    async def _spawn(self) -> asyncio.subprocess.Process:
        layout = self.rt.layout
        cwd = Path(self.spec.cwd) if self.spec.cwd else layout.home
        if not _is_dir(cwd):
            cwd = layout.home
        with open_log(layout.process_logs_dir / f"{self.spec.name}.log", f"{now_iso()} starting") as log:
            return await asyncio.create_subprocess_exec(
                *self.spec.argv,
                cwd=cwd,
                env=self.rt.child_env(
                    {**self.spec.env, **(agent_env(self.rt) if self.spec.name == "agent" else {})}
                ),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    async def _run(self) -> None:
        name, policy = self.spec.name, self.rt.config.restart_policy if self.rt.config else None
        assert policy is not None
        while not self._stopping:
            try:
                self.proc = await self._spawn()
            except OSError as exc:
                code: int | None = None
                self.rt.boot.process(name, state="exited", error=f"cannot start: {exc.strerror or exc}")
            else:
                self.rt.boot.process(
                    name,
                    state="running",
                    pid=self.proc.pid,
                    started_at=now_iso(),
                    ready=False,
                    restarts=self.total_restarts,
                )
                probe = asyncio.create_task(self._probe_ready(self.proc))
                code = await self.proc.wait()
                probe.cancel()
                self.rt.boot.process(name, state="exited", pid=None, ready=False, last_exit_code=code)
            if self._stopping:
                break
            if self._requested:
                self._requested = False
                continue
            if self.spec.restart == "never" or (self.spec.restart == "on_failure" and code == 0):
                self.rt.boot.process(name, state="stopped")
                return
            now = time.monotonic()
            while self.restarts and now - self.restarts[0] > policy.window_s:
                self.restarts.popleft()
            if len(self.restarts) >= policy.max_restarts:
                self.rt.boot.process(
                    name,
                    state="gave_up",
                    gave_up_at=now_iso(),
                    restarts_in_window=len(self.restarts),
                    error=f"{len(self.restarts) + 1} crashes within {int(policy.window_s)} s; not restarting",
                )
                return
            delay = min(policy.backoff_initial_s * 2 ** len(self.restarts), policy.backoff_max_s)
            self.restarts.append(now)
            self.total_restarts += 1
            self.rt.boot.process(
                name,
                state="backoff",
                restarts=self.total_restarts,
                restarts_in_window=len(self.restarts),
                next_start_in_s=delay,
            )
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _probe_ready(self, proc: asyncio.subprocess.Process) -> None:
        port = self.rt.config.process_port(self.spec) if self.rt.config else None
        if not self.spec.ready_http_path or port is None:
            return
        url = f"http://127.0.0.1:{port}{self.spec.ready_http_path}"
        started = time.monotonic()
        interval, next_probe = READY_PROBE_INTERVAL_S, started
        pending: set[asyncio.Task[bool]] = set()
        async with aiohttp.ClientSession() as http:
            try:
                while proc.returncode is None:
                    now = time.monotonic()
                    if now >= next_probe and len(pending) < READY_PROBE_MAX_OUTSTANDING:
                        pending.add(asyncio.create_task(self._probe_once(http, url)))
                        next_probe = now + interval
                        if now - started > READY_PROBE_FAST_WINDOW_S:
                            interval = min(interval * 1.5, 1.0)
                    wait = max(next_probe - time.monotonic(), 0.01)
                    if not pending:  # every probe so far was refused at once
                        await asyncio.sleep(wait)
                        continue
                    done, pending = await asyncio.wait(
                        pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                    )
                    if any(task.result() for task in done):
                        self.rt.boot.process(self.spec.name, ready=True, ready_at=now_iso())
                        return
            finally:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

    async def _probe_once(self, http: aiohttp.ClientSession, url: str) -> bool:
        headers = agent_auth_headers(self.rt) if self.spec.name == "agent" else {}
        limit = aiohttp.ClientTimeout(total=READY_PROBE_TIMEOUT_S)
        try:
            async with http.get(url, headers=headers, timeout=limit) as res:
                return res.status < 500
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def restart(self) -> None:
        """Restart now (new env), without counting it as a crash."""
        proc = self.proc
        if self.task is None or self.task.done():  # stopped or gave up: a new env is a fresh start
            self.restarts.clear()
            self.start()
        elif proc is not None and proc.returncode is None:
            self._requested = True
            kill_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
            kill_group(proc.pid, signal.SIGKILL)
        else:
            self._wake.set()  # in backoff: start at once

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        proc = self.proc
        if proc is not None and proc.returncode is None:
            kill_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        if proc is not None:
            kill_group(proc.pid, signal.SIGKILL)
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


class Supervisor:
    def __init__(self, layout: Layout, socket_path: Path | None = None) -> None:
        self.rt = Runtime(layout)
        self.socket_path = socket_path
        self.services: ServiceManager | None = None
        self.runners: list[ProcessRunner] = []
        self._runners_by_name: dict[str, ProcessRunner] = {}
        self._sites: list[web.BaseSite] = []
        self._runners_web: list[web.AppRunner] = []
        self._env_raw: bytes | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        try:
            await self.start()
            await self._stop.wait()
        finally:
            await self.close()

    async def start(self) -> None:
        layout = self.rt.layout
        layout.runtime_dir.mkdir(parents=True, exist_ok=True)
        self.rt.boot.flush()
        if self.socket_path is not None:
            await self._serve(create_exec_app(self.rt), unix=self.socket_path)
        self._spawn_task(self._main())

    async def _main(self) -> None:
        layout = self.rt.layout
        while True:  # the service writes supervisor.json first and session.env last
            if layout.supervisor_json.exists() and layout.session_env.exists():
                break
            await asyncio.sleep(POLL_S)
        self.rt.config = layout.load_config()
        loaded = read_env_file(layout.session_env)
        if loaded is not None:
            self._env_raw, env = loaded
            self.rt.set_session_env(env)
        config = self.rt.config
        self.services = ServiceManager(self.rt)
        self.rt.boot.update(state="starting", ports=_ports(self.rt))
        await self._serve(create_api_app(self.rt, self.services), host="127.0.0.1", port=config.ports.api)
        await self._serve(
            create_router_app(self.rt, self.services), host=config.router_host, port=config.ports.router
        )
        for spec in config.processes:
            runner = ProcessRunner(self.rt, spec)
            self.runners.append(runner)
            self._runners_by_name[spec.name] = runner
            runner.start()
        self.rt.boot.update(state="running")
        self._spawn_task(self._watch_env())
        await self._phase2()

    async def _serve(
        self,
        app: web.Application,
        *,
        host: str | None = None,
        port: int | None = None,
        unix: Path | None = None,
    ) -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site: web.BaseSite
        if unix is not None:
            prepare_socket(unix)
            site = web.UnixSite(runner, str(unix))
        else:
            site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        self._runners_web.append(runner)
        self._sites.append(site)

    async def _watch_env(self) -> None:
        layout = self.rt.layout
        while True:
            await asyncio.sleep(POLL_S)
            loaded = read_env_file(layout.session_env)
            if loaded is None or loaded[0] == self._env_raw:
                continue  # absent during a snapshot scrub: keep the last env
            self._env_raw, env = loaded
            self.rt.set_session_env(env)
            self.rt.boot.update(env_reloaded_at=now_iso())
            agent = self._runners_by_name.get("agent")
            if agent is not None:
                await agent.restart()

    async def _phase2(self) -> None:
        config = self.rt.config
        assert config is not None and self.services is not None
        self.rt.boot.phase2(state="running", started_at=now_iso())
        for cmd in config.setup_commands:
            await self._setup_command(cmd, config.setup_timeout_s)
        if config.autostart_services:
            for svc in config.service_commands:
                step = {"kind": "service", "name": svc.name}
                try:
                    await self.services.start(svc.name, svc.command, svc.cwd)
                    self.rt.boot.phase2_step({**step, "status": "started"})
                except ServiceError as exc:
                    self.rt.boot.phase2_step({**step, "status": "failed", "error": exc.message})
        self.rt.boot.phase2(state="done", finished_at=now_iso())

    async def _setup_command(self, cmd: CommandConfig, timeout_s: float) -> None:
        step: dict[str, object] = {"kind": "setup_command", "name": cmd.name, "status": "running"}
        self.rt.boot.phase2_step(step)
        started = time.monotonic()
        try:
            cwd = self.rt.layout.inside_home(cmd.cwd)
            log = self.rt.layout.process_logs_dir / f"setup-{cmd.name}.log"
            with open_log(log, f"{now_iso()} setup command {cmd.name}") as out:
                proc = await asyncio.create_subprocess_exec(
                    "bash",
                    "-c",
                    cmd.command,
                    cwd=cwd,
                    env=self.rt.child_env(),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    start_new_session=True,
                )
            try:
                code = await asyncio.wait_for(proc.wait(), timeout_s)
                step.update(status="ok" if code == 0 else "failed", exit_code=code)
            except TimeoutError:
                kill_group(proc.pid, signal.SIGKILL)
                await proc.wait()
                step.update(status="timeout", exit_code=124)
        except (OSError, ValueError) as exc:
            step.update(status="failed", error=str(exc))
        step["ms"] = int((time.monotonic() - started) * 1000)
        self.rt.boot.phase2_step(step)

    def _spawn_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.rt.boot.update(state="failed", error=repr(task.exception()))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for runner in self.runners:
            await runner.stop()
        if self.services is not None:
            await self.services.close()
        for web_runner in reversed(self._runners_web):
            await web_runner.cleanup()


def _ports(rt: Runtime) -> dict[str, int]:
    assert rt.config is not None
    p = rt.config.ports
    return {"router": p.router, "agent": p.agent, "api": p.api, "vscode": p.vscode}


def _is_dir(path: Path) -> bool:
    return path.is_dir()
