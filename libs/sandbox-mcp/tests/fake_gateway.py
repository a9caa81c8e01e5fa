"""A gateway stand-in for the CLI's `actions` calls: HTTP/1.1 by hand so a step can drop the connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

Step = tuple[int, Any] | None  # (status, JSON body), or None: close the connection without answering


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeGateway:
    routes: dict[str, list[Step]] = field(default_factory=dict)  # "METHOD /path-suffix" → steps
    seen: list[Request] = field(default_factory=list)
    port: int = 0

    def on(self, method: str, suffix: str, *steps: Step) -> None:
        self.routes[f"{method} {suffix}"] = list(steps)

    def calls(self, method: str, suffix: str) -> list[Request]:
        return [r for r in self.seen if r.method == method and r.path.split("?")[0].endswith(suffix)]

    def _step(self, method: str, path: str) -> Step:
        for key, steps in self.routes.items():
            m, _, suffix = key.partition(" ")
            if m == method and path.split("?")[0].endswith(suffix) and steps:
                return steps.pop(0) if len(steps) > 1 else steps[0]
        return (404, {"error": {"code": "not_found", "message": path, "details": {}}})

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ")
                headers = {
                    k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ":" in ln)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.seen.append(Request(method, path, headers, body))
                step = self._step(method, path)
                if step is None:
                    writer.transport.abort()
                    return
                status, payload = step
                data = json.dumps(payload).encode()
                head_out = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                head_out += f"Content-Length: {len(data)}\r\n"
                writer.write(head_out.encode() + b"\r\n" + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def fake_gateway() -> AsyncIterator[FakeGateway]:
    gw = FakeGateway()
    server = await asyncio.start_server(gw.handle, "127.0.0.1", 0)
    gw.port = server.sockets[0].getsockname()[1]
    async with server:
        yield gw
