"""The router: preview routing, streaming without buffering, WebSocket pass-through, header hygiene."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest_asyncio
from aiohttp import web
from proliferate.devkit.infra import free_port

from .conftest import Sandbox, fake_agent


class Upstream:
    """A preview app: echoes request headers, streams SSE on demand, echoes WebSocket frames."""

    def __init__(self) -> None:
        self.port = free_port()
        self.release = asyncio.Event()
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/headers", self.headers)
        app.router.add_get("/sse", self.sse)
        app.router.add_get("/ws", self.ws)
        app.router.add_route("*", "/{tail:.*}", self.echo)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def headers(self, request: web.Request) -> web.Response:
        return web.json_response(dict(request.headers))

    async def echo(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"method": request.method, "path": request.raw_path, "body": await request.text()}
        )

    async def sse(self, request: web.Request) -> web.StreamResponse:
        res = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await res.prepare(request)
        await res.write(b"data: first\n\n")
        await self.release.wait()
        await res.write(b"data: second\n\n")
        return res

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(f"echo:{msg.data}")
        return ws


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    await up.start()
    yield up
    assert up.runner is not None
    await up.runner.cleanup()


async def expose(box: Sandbox, port: int) -> None:
    async with httpx.AsyncClient(headers=box.auth()) as client:
        res = await client.post(f"{box.router_url}/_proliferate/mcp/api/expose", json={"port": port})
        assert res.status_code == 200, res.text


class TestPreview:
    async def test_no_preview_is_502(self, sandbox: Sandbox) -> None:
        async with httpx.AsyncClient() as client:
            res = await client.get(f"{sandbox.router_url}/")
        assert res.status_code == 502 and res.json()["error"]["code"] == "no_preview"

    async def test_previews_json_then_exposed_port_win(self, sandbox: Sandbox, upstream: Upstream) -> None:
        (sandbox.home / ".proliferate" / "previews.json").write_text(
            json.dumps({"previews": [{"name": "web", "port": upstream.port}]})
        )
        async with httpx.AsyncClient() as client:
            res = await client.post(f"{sandbox.router_url}/api/items?x=1", content=b"payload")
            assert res.json() == {"method": "POST", "path": "/api/items?x=1", "body": "payload"}
            other = Upstream()
            await other.start()
            try:
                await expose(sandbox, other.port)
                assert (await client.get(f"{sandbox.router_url}/headers")).status_code == 200
                res = await client.get(f"{sandbox.router_url}/who")
                assert res.json()["path"] == "/who"
            finally:
                assert other.runner is not None
                await other.runner.cleanup()

    async def test_the_sandbox_token_never_reaches_the_preview(
        self, sandbox: Sandbox, upstream: Upstream
    ) -> None:
        await expose(sandbox, upstream.port)
        async with httpx.AsyncClient() as client:
            res = await client.get(f"{sandbox.router_url}/headers", headers=sandbox.auth())
        seen = {k.lower(): v for k, v in res.json().items()}
        assert "authorization" not in seen and sandbox.token not in json.dumps(seen)
        assert seen["x-forwarded-host"] == f"127.0.0.1:{sandbox.ports['router']}"

    async def test_streams_are_forwarded_before_they_end(self, sandbox: Sandbox, upstream: Upstream) -> None:
        await expose(sandbox, upstream.port)
        async with httpx.AsyncClient() as client, client.stream("GET", f"{sandbox.router_url}/sse") as res:
            lines = res.aiter_lines()
            first = await asyncio.wait_for(anext(lines), 10)
            assert first == "data: first", "the first event arrived while the upstream still held the second"
            upstream.release.set()
            rest = [line async for line in lines]
            assert "data: second" in rest

    async def test_websocket_pass_through(self, sandbox: Sandbox, upstream: Upstream) -> None:
        await expose(sandbox, upstream.port)
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"ws://127.0.0.1:{sandbox.ports['router']}/ws")
            await ws.send_str("ping")
            msg = await ws.receive(timeout=10)
            assert msg.data == "echo:ping"
            await ws.close()


class TestPlatformPaths:
    async def test_mcp_health_open_and_agent_with_token(self, sandbox: Sandbox) -> None:
        await sandbox.wait_process("agent", lambda p: p.get("ready") is True)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{sandbox.router_url}/_proliferate/mcp/api/health")).status_code == 200
            # The fake agent (a static file server) answers 404 for /session: reached, not refused.
            res = await client.get(f"{sandbox.router_url}/_proliferate/agent/session", headers=sandbox.auth())
            assert res.status_code == 404 and "Error response" in res.text

    async def test_unknown_platform_section_is_404(self, sandbox: Sandbox) -> None:
        async with httpx.AsyncClient() as client:
            res = await client.get(f"{sandbox.router_url}/_proliferate/nope/x", headers=sandbox.auth())
        assert res.status_code == 404

    async def test_dead_upstream_is_502(self, sandbox: Sandbox) -> None:
        async with httpx.AsyncClient() as client:
            res = await client.get(f"{sandbox.router_url}/_proliferate/vscode/", headers=sandbox.auth())
        assert res.status_code == 502 and res.json()["error"]["code"] == "upstream_unavailable"


class TestAgentGate:
    async def test_agent_paths_answer_503_until_the_agent_is_ready(self, tmp_path: object) -> None:
        box = Sandbox(tmp_path)  # type: ignore[arg-type]
        slow = fake_agent(box.ports["agent"])
        slow["argv"] = ["sh", "-c", f"sleep 2; exec {' '.join(slow['argv'])}"]
        box.write_config(processes=[slow])
        box.write_env()
        box.start()
        try:
            await box.wait_api()
            async with httpx.AsyncClient() as client:
                res = await client.get(f"{box.router_url}/_proliferate/agent/session", headers=box.auth())
                assert res.status_code == 503 and res.headers["retry-after"] == "1"
                assert res.json()["error"]["code"] == "agent_starting"
                await box.wait_process("agent", lambda p: p.get("ready") is True)
                res = await client.get(f"{box.router_url}/_proliferate/agent/session", headers=box.auth())
                assert res.status_code == 404  # reached the (static file server) agent
        finally:
            box.stop()
