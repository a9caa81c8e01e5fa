"""Exec over the supervisor's unix socket, for providers without an SDK exec (local).

`POST /exec {"argv", "cwd", "env", "timeout_s"}` runs argv (never through a shell) in its own process
group with the sandbox env overlaid by `env`; a timeout kills the group and answers exit 124; each
stream keeps its first 16 KiB and is marked `...[truncated]`. `GET /health` answers once the socket is up.
"""

from __future__ import annotations

import asyncio
import signal

import msgspec
from aiohttp import web
from proliferate.sandbox_mcp.auth import error_response
from proliferate.sandbox_mcp.runtime import Runtime, kill_group

STREAM_CAP = 16 * 1024
TRUNCATED_MARKER = "...[truncated]"
DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 600.0
MAX_ARGV_BYTES = 64 * 1024
TIMEOUT_EXIT = 124


class ExecRequest(msgspec.Struct, forbid_unknown_fields=True):
    argv: list[str]
    cwd: str | None = None
    env: dict[str, str] = {}
    timeout_s: float = DEFAULT_TIMEOUT_S


class ExecResult(msgspec.Struct):
    exit_code: int
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool


async def _capped(stream: asyncio.StreamReader) -> tuple[bytes, bool]:
    """Keep the first STREAM_CAP bytes; drain the rest so the child never blocks on a full pipe."""
    kept = bytearray()
    truncated = False
    while chunk := await stream.read(65536):
        room = STREAM_CAP - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > room:
            truncated = True
    return bytes(kept), truncated


def _text(data: bytes, truncated: bool) -> str:
    text = data.decode("utf-8", errors="replace")
    return text + TRUNCATED_MARKER if truncated else text


async def run_exec(rt: Runtime, req: ExecRequest) -> ExecResult:
    cwd = rt.layout.inside_home(req.cwd, base=rt.layout.home)
    proc = await asyncio.create_subprocess_exec(
        *req.argv,
        cwd=cwd,
        env=rt.child_env(req.env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    readers = asyncio.gather(_capped(proc.stdout), _capped(proc.stderr))
    timed_out = False
    try:
        await asyncio.wait_for(proc.wait(), req.timeout_s)
    except TimeoutError:
        timed_out = True
        kill_group(proc.pid, signal.SIGKILL)
        await proc.wait()
    # Background children of the command may hold the pipes open: give them a moment, then kill them.
    try:
        (out, out_cut), (err, err_cut) = await asyncio.wait_for(asyncio.shield(readers), 2.0)
    except TimeoutError:
        kill_group(proc.pid, signal.SIGKILL)
        (out, out_cut), (err, err_cut) = await readers
    code = TIMEOUT_EXIT if timed_out else (proc.returncode if proc.returncode is not None else -1)
    if code < 0:  # killed by a signal: the shell convention
        code = 128 - code
    return ExecResult(code, _text(out, out_cut), _text(err, err_cut), out_cut, err_cut)


def _validate(body: bytes) -> ExecRequest:
    req = msgspec.json.decode(body, type=ExecRequest)
    if not req.argv or not req.argv[0]:
        raise ValueError("argv must be a non-empty list")
    if sum(len(a.encode()) for a in req.argv) > MAX_ARGV_BYTES:
        raise ValueError("argv is larger than 64 KiB")
    if not 0 < req.timeout_s <= MAX_TIMEOUT_S:
        raise ValueError(f"timeout_s must be in (0, {MAX_TIMEOUT_S:.0f}]")
    return req


def create_exec_app(rt: Runtime) -> web.Application:
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "started": rt.config is not None})

    async def exec_(request: web.Request) -> web.Response:
        try:
            req = _validate(await request.read())
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return error_response(400, "invalid_request", str(exc))
        try:
            result = await run_exec(rt, req)
        except ValueError as exc:
            return error_response(400, "unsafe_path", str(exc))
        except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
            # The program or cwd does not exist: the shell's "command not found" answer.
            return web.json_response(msgspec.to_builtins(ExecResult(127, "", f"{exc}\n", False, False)))
        return web.json_response(msgspec.to_builtins(result))

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_get("/health", health)
    app.router.add_post("/exec", exec_)
    return app
