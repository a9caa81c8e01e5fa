"""WS `/api/terminal`: bash on a PTY in the workspace (`TERM=xterm-256color`).

Text frames are keystrokes; a JSON text frame `{"type": "resize", "cols", "rows"}` resizes. The
bearer token is checked at the upgrade only (by the API middleware).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import fcntl
import json
import os
import signal
import struct
import termios

from aiohttp import WSMsgType, web
from proliferate.sandbox_mcp.runtime import Runtime, kill_group


def _resize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _control(data: str) -> tuple[int, int] | None:
    if not data.startswith("{"):
        return None
    try:
        msg = json.loads(data)
    except ValueError:
        return None
    if isinstance(msg, dict) and msg.get("type") == "resize":
        cols, rows = msg.get("cols"), msg.get("rows")
        if isinstance(cols, int) and isinstance(rows, int) and 0 < cols < 1000 and 0 < rows < 1000:
            return cols, rows
    return None


def create_terminal_route(rt: Runtime) -> web.RouteDef:
    async def terminal(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(request)
        master, slave = os.openpty()
        _resize(master, 120, 32)
        cwd = rt.layout.workspace if rt.layout.workspace.is_dir() else rt.layout.home
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-i",
            cwd=cwd,
            env=rt.child_env({"TERM": "xterm-256color"}),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        loop = asyncio.get_running_loop()
        output: asyncio.Queue[bytes] = asyncio.Queue()

        def readable() -> None:
            try:
                output.put_nowait(os.read(master, 65536))
            except OSError:
                output.put_nowait(b"")

        loop.add_reader(master, readable)

        async def pump_out() -> None:
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            while chunk := await output.get():
                await ws.send_str(decoder.decode(chunk))
            await ws.close()

        sender = asyncio.create_task(pump_out())
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                size = _control(msg.data)
                if size is not None:
                    _resize(master, *size)
                else:
                    os.write(master, msg.data.encode())
        finally:
            loop.remove_reader(master)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            kill_group(proc.pid, signal.SIGHUP)
            kill_group(proc.pid, signal.SIGKILL)
            await proc.wait()
            os.close(master)
        return ws

    return web.get("/api/terminal", terminal)
