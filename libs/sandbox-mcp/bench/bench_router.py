"""sandbox-mcp figures: what the router adds to a preview request, an exec round trip over the unix
socket, and supervisor start → API answering (process isolation, a temp home).

No target in the issue; printed so regressions are visible. Every request of a session's UI and every
`ExecCommand` of a local sandbox pays these costs.
"""

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

import httpx
from aiohttp import web
from proliferate.devkit.bench import BenchEnv, summarize_ms
from proliferate.devkit.infra import free_port

REQUESTS = 400
EXECS = 100


async def _upstream(port: int) -> web.AppRunner:
    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _time_gets(
    client: httpx.AsyncClient, url: str, n: int, headers: dict[str, str] | None = None
) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        res = await client.get(url, headers=headers)
        res.raise_for_status()
        out.append(time.perf_counter() - start)
    return out


async def main(env: BenchEnv) -> None:
    root = env.workdir / f"sandbox-mcp-{secrets.token_hex(3)}"
    home, tmp, run = root / "home", root / "tmp", root / "run"
    for d in (home / "workspace", home / ".proliferate", tmp / "proliferate", run):
        d.mkdir(parents=True)
    ports = {"router": free_port(), "agent": free_port(), "api": free_port(), "vscode": free_port()}
    token = "sbx_bench_" + secrets.token_urlsafe(16)
    (home / ".proliferate" / "supervisor.json").write_text(
        json.dumps({"ports": ports, "router_host": "127.0.0.1", "preview_fallback": False})
    )
    (tmp / "proliferate" / "session.env").write_text(f"SANDBOX_MCP_AUTH_TOKEN={shlex.quote(token)}\n")
    upstream_port = free_port()
    upstream = await _upstream(upstream_port)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proliferate.sandbox_mcp",
            "supervise",
            "--home",
            str(home),
            "--tmp",
            str(tmp),
            "--socket",
            str(run / "mcp.sock"),
        ],
        env={"HOME": str(home), "PATH": os.environ["PATH"], "TMPDIR": str(tmp), "LANG": "C.UTF-8"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    auth = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient() as client:
            while True:
                try:
                    if (await client.get(f"http://127.0.0.1:{ports['api']}/api/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.01)
            print(f"supervisor start → API answering: {(time.perf_counter() - started) * 1000:.0f} ms")
            res = await client.post(
                f"http://127.0.0.1:{ports['api']}/api/expose", json={"port": upstream_port}, headers=auth
            )
            res.raise_for_status()
            router = f"http://127.0.0.1:{ports['router']}/"
            direct = f"http://127.0.0.1:{upstream_port}/"
            await _time_gets(client, router, 20)
            print(f"preview GET direct:       {summarize_ms(await _time_gets(client, direct, REQUESTS))}")
            print(f"preview GET via router:   {summarize_ms(await _time_gets(client, router, REQUESTS))}")
            health = f"http://127.0.0.1:{ports['router']}/_proliferate/mcp/api/services"
            print(
                f"API GET via router+token: {summarize_ms(await _time_gets(client, health, REQUESTS, auth))}"
            )
        transport = httpx.AsyncHTTPTransport(uds=str(run / "mcp.sock"))
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as sock:
            times = []
            for _ in range(EXECS):
                start = time.perf_counter()
                res = await sock.post("/exec", json={"argv": ["true"]})
                res.raise_for_status()
                times.append(time.perf_counter() - start)
            print(f"exec `true` round trip:   {summarize_ms(times)}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        await upstream.cleanup()
