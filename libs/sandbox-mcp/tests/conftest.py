"""A sandbox on a temp home, supervised for real: `python -m proliferate.sandbox_mcp supervise` in a
process of its own (the local provider's `process` isolation), with free ports."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from proliferate.devkit.infra import free_port
from proliferate.devkit.pytest_plugin import register_canary, register_log_file

FAST_RESTARTS = {"backoff_initial_s": 0.1, "backoff_max_s": 0.5, "max_restarts": 5, "window_s": 300}


def new_token() -> str:
    return register_canary("sbx_" + secrets.token_urlsafe(24))


def fake_agent(port: int, **overrides: Any) -> dict[str, Any]:
    """A stand-in agent process: a static HTTP server on the agent port (any answer < 500 is ready)."""
    return {
        "name": "agent",
        "argv": [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        "restart": "always",
        "ready_http_path": "/session",
        **overrides,
    }


class Sandbox:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.home, self.tmp, self.run = root / "home", root / "tmp", root / "run"
        for d in (self.home / "workspace", self.tmp, self.run):
            d.mkdir(parents=True, exist_ok=True)
        self.socket = self.run / "mcp.sock"
        self.ports = {"router": free_port(), "agent": free_port(), "api": free_port(), "vscode": free_port()}
        self.token = new_token()
        self.log = register_log_file(root / "supervisor.log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.sandbox_id = f"sbx-{secrets.token_hex(4)}"

    # --- files the sandbox service writes ---
    def config(self, **fields: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "contract_version": 1,
            "ports": self.ports,
            "router_host": "127.0.0.1",
            "preview_fallback": False,
            "restart_policy": FAST_RESTARTS,
        }
        base.update(fields)
        return base

    def write_config(self, **fields: Any) -> None:
        path = self.home / ".proliferate" / "supervisor.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.config(**fields)))

    def write_env(self, token: str | None = None, **extra: str) -> None:
        env = {
            "SANDBOX_MCP_AUTH_TOKEN": token or self.token,
            "PROLIFERATE_SANDBOX_ID": self.sandbox_id,
            **extra,
        }
        path = self.tmp / "proliferate" / "session.env"
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(".new")
        staging.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()))
        staging.chmod(0o600)
        staging.replace(path)

    # --- the process ---
    def start(self, extra_env: dict[str, str] | None = None) -> None:
        env = {
            "HOME": str(self.home),
            "PATH": os.environ["PATH"],
            "TMPDIR": str(self.tmp),
            "LANG": "C.UTF-8",
            "PROLIFERATE_SANDBOX_ID": self.sandbox_id,
            **(extra_env or {}),
        }
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "proliferate.sandbox_mcp",
                    "supervise",
                    "--home",
                    str(self.home),
                    "--tmp",
                    str(self.tmp),
                    "--socket",
                    str(self.socket),
                ],
                cwd=self.home,
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:]) if self.log.exists() else ""

    # --- clients ---
    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['router']}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def exec_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(self.socket)), base_url="http://sandbox"
        )

    async def exec(self, argv: list[str], **fields: Any) -> dict[str, Any]:
        async with self.exec_client() as client:
            res = await client.post("/exec", json={"argv": argv, **fields}, timeout=700)
            body: dict[str, Any] = res.json()
            body["_status"] = res.status_code
            return body

    async def boot(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            res = await client.get(f"{self.api_url}/api/boot", headers=self.auth())
            res.raise_for_status()
            data: dict[str, Any] = res.json()
            return data

    async def wait_socket(self, timeout: float = 30.0) -> None:
        async def ready() -> bool:
            try:
                async with self.exec_client() as client:
                    return (await client.get("/health", timeout=2)).status_code == 200
            except httpx.TransportError:
                return False

        await until(ready, timeout, f"exec socket did not answer: {self.log_tail()}")

    async def wait_api(self, timeout: float = 30.0) -> None:
        async def ready() -> bool:
            try:
                async with httpx.AsyncClient() as client:
                    return (await client.get(f"{self.api_url}/api/health", timeout=2)).status_code == 200
            except httpx.TransportError:
                return False

        await until(ready, timeout, f"API did not answer: {self.log_tail()}")

    async def wait_process(
        self, name: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0
    ) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def check() -> bool:
            nonlocal seen
            seen = (await self.boot()).get("processes", {}).get(name, {})
            return predicate(seen)

        await until(check, timeout, lambda: f"process {name} never matched; last {seen}")
        return seen


async def until(
    check: Callable[[], Awaitable[bool]],
    timeout: float,
    message: str | Callable[[], str] = "condition not met",
) -> None:
    """Poll `check` until it holds or the deadline passes (tests never assert timings, only deadlines)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(message() if callable(message) else message)


@pytest_asyncio.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    """A started supervisor with a fake agent; config and env written, API up."""
    box = Sandbox(tmp_path)
    box.write_config(processes=[fake_agent(box.ports["agent"])])
    box.write_env()
    box.start()
    try:
        await box.wait_api()
        yield box
    finally:
        box.stop()


@pytest_asyncio.fixture
async def bare_sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    """A supervisor started before anything was written (as the local provider does at create)."""
    box = Sandbox(tmp_path)
    box.start()
    try:
        await box.wait_socket()
        yield box
    finally:
        box.stop()
