"""The router: the sandbox's single exposed port (CONTRACT.md "Endpoints").

`/_proliferate/agent/*` → the agent, `/_proliferate/mcp/*` → the API, `/_proliferate/vscode/*` →
openvscode-server, anything else → the preview upstream (exposed port → first `previews.json` entry →
first live of 3000, 5173, 8000, 4321 unless disabled). Every `/_proliferate/*` path needs the sandbox
token except the API health check; the agent's paths answer 503 `agent_starting` until it is ready.
Responses stream (SSE from the agent flows through unbuffered) and WebSockets are passed through.
The sandbox token never travels past the router to the agent or a preview app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from urllib.parse import quote

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from proliferate.sandbox_mcp.auth import error_response, unauthorized
from proliferate.sandbox_mcp.layout import PREVIEW_FALLBACK_PORTS
from proliferate.sandbox_mcp.runtime import Runtime
from proliferate.sandbox_mcp.services import ServiceManager
from proliferate.sandbox_mcp.supervisor_auth import agent_auth_headers
from yarl import URL

PREFIX = "/_proliferate/"
OPEN_PATHS = frozenset({"/_proliferate/mcp/api/health"})
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
WS_SKIP = HOP_BY_HOP | {
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-accept",
}


def _port_open(port: int) -> Awaitable[bool]:
    async def probe() -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 0.3)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    return probe()


class Router:
    def __init__(self, rt: Runtime, services: ServiceManager) -> None:
        self.rt, self.services = rt, services
        self.http: aiohttp.ClientSession | None = None

    async def preview_port(self) -> int | None:
        if self.services.state.exposed_port:
            return self.services.state.exposed_port
        try:
            previews = json.loads(self.rt.layout.previews_json.read_text())["previews"]
            port = int(previews[0]["port"])
            if 0 < port < 65536 and port not in self._reserved():
                return port
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            pass
        if self.rt.config is not None and not self.rt.config.preview_fallback:
            return None
        for port in PREVIEW_FALLBACK_PORTS:
            if await _port_open(port):
                return port
        return None

    def _agent_ready(self) -> bool:
        """OpenCode binds its port before it can answer, and a request that arrives in that window
        can hang for good: until the supervisor's probe has seen it answer, callers get a quick 503."""
        assert self.rt.config is not None
        agent = next((p for p in self.rt.config.processes if p.name == "agent"), None)
        if agent is None or not agent.ready_http_path:
            return True
        return bool(self.rt.boot.doc["processes"].get("agent", {}).get("ready"))

    def _reserved(self) -> frozenset[int]:
        return self.rt.config.reserved_ports() if self.rt.config else frozenset()

    async def upstream(self, request: web.Request) -> tuple[URL, dict[str, str]] | web.Response:
        """(upstream URL, extra headers) for the request, or the error response.

        Routing and auth look at the normalized path; the upstream gets the raw (still encoded) rest
        of it, so `..%2F` stays data for the upstream to refuse instead of becoming a path.
        """
        path, raw = request.path, request.rel_url.raw_path
        assert self.rt.config is not None
        ports = self.rt.config.ports
        if path.startswith(PREFIX):
            if path not in OPEN_PATHS and not self.rt.tokens.check_request(request):
                return unauthorized()
            section, _, rest = path[len(PREFIX) :].partition("/")
            prefix = f"{PREFIX}{section}/"
            rest_raw = "/" + (raw[len(prefix) :] if raw.startswith(prefix) else quote(rest))
            if section == "agent":
                if not self._agent_ready():
                    res = error_response(503, "agent_starting", "the agent is starting; retry shortly")
                    res.headers["Retry-After"] = "1"
                    return res
                return self._url(ports.agent, rest_raw, request), agent_auth_headers(self.rt)
            if section == "mcp":
                auth = request.headers.get("Authorization")
                return self._url(ports.api, rest_raw, request), ({"Authorization": auth} if auth else {})
            if section == "vscode":
                return self._url(ports.vscode, rest_raw, request), {}
            return error_response(404, "not_found", "unknown platform path")
        port = await self.preview_port()
        if port is None:
            return error_response(502, "no_preview", "no preview port is exposed or listening")
        return self._url(port, raw, request), {}

    @staticmethod
    def _url(port: int, raw_path: str, request: web.Request) -> URL:
        query = request.rel_url.raw_query_string
        return URL.build(
            scheme="http", host="127.0.0.1", port=port, path=raw_path, query_string=query, encoded=True
        )

    def _forward_headers(
        self, request: web.Request, extra: dict[str, str], skip: frozenset[str]
    ) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        for key, value in request.headers.items():
            if key.lower() not in skip and key.lower() != "authorization":
                headers.add(key, value)
        headers.update(extra)
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Proto"] = request.headers.get("X-Forwarded-Proto", request.scheme)
        return headers

    async def handle(self, request: web.Request) -> web.StreamResponse:
        target = await self.upstream(request)
        if isinstance(target, web.Response):
            return target
        url, extra = target
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, url, extra)
        return await self._http(request, url, extra)

    async def _http(self, request: web.Request, url: URL, extra: dict[str, str]) -> web.StreamResponse:
        assert self.http is not None
        body = await request.read() if request.body_exists else None
        try:
            upstream = await self.http.request(
                request.method,
                url,
                headers=self._forward_headers(request, extra, HOP_BY_HOP),
                data=body,
                allow_redirects=False,
                auto_decompress=False,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return error_response(
                502, "upstream_unavailable", f"upstream did not answer: {type(exc).__name__}"
            )
        async with upstream:
            headers = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP)
            res = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
            if (
                upstream.headers.get("Content-Length") is not None
                and "event-stream" not in upstream.content_type
            ):
                res.content_length = int(upstream.headers["Content-Length"])
            await res.prepare(request)
            with contextlib.suppress(ConnectionResetError, aiohttp.ClientPayloadError):
                async for chunk in upstream.content.iter_any():
                    await res.write(chunk)
            await res.write_eof()
            return res

    async def _websocket(self, request: web.Request, url: URL, extra: dict[str, str]) -> web.StreamResponse:
        assert self.http is not None
        protocols = [
            p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
        ]
        headers = self._forward_headers(request, extra, WS_SKIP | {"sec-websocket-protocol"})
        try:
            client = await self.http.ws_connect(url.with_scheme("ws"), headers=headers, protocols=protocols)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return error_response(
                502, "upstream_unavailable", f"upstream did not answer: {type(exc).__name__}"
            )
        server = web.WebSocketResponse(protocols=[client.protocol] if client.protocol else ())
        await server.prepare(request)

        async def pump(
            src: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
            dst: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        ) -> None:
            async for msg in src:
                if msg.type == WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                else:
                    break
            await dst.close()

        tasks = [asyncio.create_task(pump(server, client)), asyncio.create_task(pump(client, server))]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await client.close()
        await server.close()
        return server


def create_router_app(rt: Runtime, services: ServiceManager) -> web.Application:
    router = Router(rt, services)

    async def startup(_: web.Application) -> None:
        # No total timeout: agent event streams stay open for the whole session.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        router.http = aiohttp.ClientSession(
            timeout=timeout, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        )

    async def cleanup(_: web.Application) -> None:
        if router.http is not None:
            await router.http.close()

    async def handle(request: web.Request) -> web.StreamResponse:
        return await router.handle(request)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
