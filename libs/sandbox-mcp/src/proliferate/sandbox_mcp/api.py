"""The sandbox-mcp HTTP/WS API (sandbox-provider.md §5.7), on loopback behind the router.

Every route needs the sandbox token except `GET /api/health`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web
from proliferate.sandbox_mcp.auth import error_response, unauthorized
from proliferate.sandbox_mcp.gitapi import create_git_routes
from proliferate.sandbox_mcp.layout import read_from
from proliferate.sandbox_mcp.runtime import Runtime
from proliferate.sandbox_mcp.services import ServiceError, ServiceManager, validate_name
from proliferate.sandbox_mcp.terminal import create_terminal_route

OPEN_PATHS = frozenset({"/api/health"})
LOG_POLL_S = 0.25

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class StartService(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    command: str
    cwd: str | None = None


class Expose(msgspec.Struct, forbid_unknown_fields=True):
    port: Any


def create_api_app(rt: Runtime, services: ServiceManager) -> web.Application:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS and not rt.tokens.check_request(request):
            return unauthorized()
        try:
            return await handler(request)
        except ServiceError as exc:
            return error_response(exc.status, exc.code, exc.message)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def auth_check(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def boot(_: web.Request) -> web.Response:
        return web.json_response(rt.boot.doc)

    async def list_services(_: web.Request) -> web.Response:
        return web.json_response(services.list_all())

    async def start_service(request: web.Request) -> web.Response:
        try:
            body = msgspec.json.decode(await request.read(), type=StartService)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return error_response(400, "invalid_request", str(exc))
        state = await services.start(body.name, body.command, body.cwd)
        return web.json_response(msgspec.to_builtins(state))

    async def stop_service(request: web.Request) -> web.Response:
        state = await services.stop(request.match_info["name"])
        return web.json_response(msgspec.to_builtins(state))

    async def expose(request: web.Request) -> web.Response:
        try:
            body = msgspec.json.decode(await request.read(), type=Expose)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return error_response(400, "invalid_request", str(exc))
        return web.json_response({"exposed_port": services.expose(body.port)})

    async def logs(request: web.Request) -> web.StreamResponse:
        name = validate_name(request.match_info["name"])
        path = rt.layout.service_log(name)
        if not path.exists() and services.get(name) is None:
            return error_response(404, "service_not_found", f"no service named {name}")
        follow = request.query.get("follow") in ("1", "true")
        res = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await res.prepare(request)
        offset, pending = 0, b""
        while True:
            chunk = read_from(path, offset)
            offset += len(chunk)
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                await res.write(b"data: " + line.replace(b"\r", b"") + b"\n\n")
            if not follow:
                break
            await asyncio.sleep(LOG_POLL_S)
        if pending:
            await res.write(b"data: " + pending + b"\n\n")
        await res.write(b"event: end\ndata: \n\n")
        await res.write_eof()
        return res

    app = web.Application(middlewares=[auth], client_max_size=1024 * 1024)
    app.add_routes(
        [
            web.get("/api/health", health),
            web.get("/api/auth/check", auth_check),
            web.get("/api/boot", boot),
            web.get("/api/services", list_services),
            web.post("/api/services", start_service),
            web.delete("/api/services/{name}", stop_service),
            web.post("/api/expose", expose),
            web.get("/api/logs/{name}", logs),
            *create_git_routes(rt),
            create_terminal_route(rt),
        ]
    )
    return app
