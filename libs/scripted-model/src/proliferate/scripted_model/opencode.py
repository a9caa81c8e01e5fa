"""Drive the real OpenCode agent (`opencode serve`) against a model endpoint, for tests.

    config = provider_config(model.openai_base_url, "sk-test")
    async with OpenCode(binary, workdir, config) as agent:
        session = await agent.create_session()
        reply = await agent.prompt(session, "run echo hi")

The agent gets its own HOME and XDG folders under the work folder, so nothing is read from
or written to the user's OpenCode state, and nothing is downloaded at run time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp

OPENAI_PROVIDER = "scripted"
ANTHROPIC_PROVIDER = "anthropic"


def provider_config(
    base_url: str,
    api_key: str,
    *,
    dialect: str = "openai",
    model: str = "scripted",
) -> dict[str, Any]:
    """An `opencode.json` whose only model is `model` at `base_url` (which ends in `/v1`).

    `dialect="openai"` uses the OpenAI-compatible provider (`scripted/<model>`);
    `dialect="anthropic"` the Anthropic provider (`anthropic/<model>`), both bundled in the binary.
    """
    if dialect == "openai":
        provider: dict[str, Any] = {
            OPENAI_PROVIDER: {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Scripted",
                "options": {"baseURL": base_url, "apiKey": api_key},
                "models": {model: {"name": model}},
            }
        }
        default = f"{OPENAI_PROVIDER}/{model}"
    elif dialect == "anthropic":
        provider = {
            ANTHROPIC_PROVIDER: {
                "options": {"baseURL": base_url, "apiKey": api_key},
                "models": {model: {"name": model}},
            }
        }
        default = f"{ANTHROPIC_PROVIDER}/{model}"
    else:
        raise ValueError(f"unknown dialect {dialect!r}")
    return {"provider": provider, "model": default, "autoupdate": False, "share": "disabled"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OpenCode:
    """One `opencode serve` process in `workdir`, with `config` written as its `opencode.json`."""

    def __init__(
        self,
        binary: str | Path,
        workdir: Path,
        config: dict[str, Any],
        *,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.binary = str(binary)
        self.workdir = workdir
        self.config = config
        self.env = env or {}
        self.log_path = log_path or workdir.parent / f"{workdir.name}-opencode.log"
        self.port = _free_port()
        self.process: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 90.0) -> OpenCode:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "opencode.json").write_text(json.dumps(self.config, indent=2))
        home = self.workdir.parent / f"{self.workdir.name}-home"
        home.mkdir(exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local/share"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_STATE_HOME": str(home / ".local/state"),
            "OPENCODE_DISABLE_AUTOUPDATE": "1",
            **self.env,
        }
        log = open(self.log_path, "ab")  # noqa: ASYNC230, SIM115 - owned by the child process
        try:
            self.process = await asyncio.create_subprocess_exec(
                self.binary,
                "serve",
                "--port",
                str(self.port),
                "--hostname",
                "127.0.0.1",
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        self._http = aiohttp.ClientSession(base_url=self.url, timeout=aiohttp.ClientTimeout(total=None))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(f"opencode exited with {self.process.returncode}: {self.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self._http.get("/config", timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == 200:
                        return self
            await asyncio.sleep(0.2)
        raise TimeoutError(f"opencode did not answer within {timeout}s: {self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    async def __aenter__(self) -> OpenCode:
        try:
            return await self.start()
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def create_session(self) -> str:
        assert self._http is not None
        async with self._http.post("/session", json={}) as response:
            response.raise_for_status()
            return str((await response.json())["id"])

    async def prompt(
        self, session_id: str, text: str, model: str | None = None, timeout: float = 120.0
    ) -> dict[str, Any]:
        """Send a user message and wait for the assistant's final message (`{"info", "parts"}`)."""
        assert self._http is not None
        provider, _, model_id = (model or str(self.config["model"])).partition("/")
        body = {
            "parts": [{"type": "text", "text": text}],
            "model": {"providerID": provider, "modelID": model_id},
        }
        async with self._http.post(
            f"/session/{session_id}/message", json=body, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            response.raise_for_status()
            reply: dict[str, Any] = await response.json()
            return reply

    async def messages(self, session_id: str) -> list[dict[str, Any]]:
        """Every message of the session with its parts (tool parts carry the tool's output)."""
        assert self._http is not None
        async with self._http.get(f"/session/{session_id}/message") as response:
            response.raise_for_status()
            result: list[dict[str, Any]] = await response.json()
            return result


def text_of(reply: dict[str, Any]) -> str:
    """The text parts of an assistant message, joined."""
    return "".join(p.get("text", "") for p in reply.get("parts", []) if p.get("type") == "text")


def tool_parts(messages: list[dict[str, Any]], tool: str | None = None) -> list[dict[str, Any]]:
    """The tool parts of these messages (`state.status`, `state.input`, `state.output`)."""
    return [
        part
        for message in messages
        for part in message.get("parts", [])
        if part.get("type") == "tool" and (tool is None or part.get("tool") == tool)
    ]
