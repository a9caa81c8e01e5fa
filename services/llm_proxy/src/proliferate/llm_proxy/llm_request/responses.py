"""The edge's ASGI responses: bytes as they are, and the streaming relay.

The relay pumps the vendor's stream to the client in one task and watches for the client
going away in another; whichever ends first decides. A client that leaves cancels the pump,
which closes the vendor connection — then the record is finalized either way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from litestar.types import Receive, Scope, Send

JSON = b"application/json"
SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def _headers(pairs: list[tuple[bytes, bytes]], extra: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [*pairs, *((k.encode(), v.encode()) for k, v in extra.items())]


class BytesResponse:
    """A whole body; `after` runs once the last byte is handed to the server."""

    def __init__(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        after: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.after = after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(
            [(b"content-type", JSON), (b"content-length", str(len(self.body)).encode())], self.headers
        )
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})
        if self.after is not None:
            await self.after()


class StreamRelay:
    """200 and SSE headers, then `first`; `pump(write)` writes the rest; `finish(aborted)` follows."""

    def __init__(
        self,
        headers: dict[str, str],
        first: bytes,
        pump: Callable[[Callable[[bytes], Awaitable[None]]], Coroutine[Any, Any, None]],
        finish: Callable[[bool], Awaitable[None]],
    ) -> None:
        self.headers = headers
        self.first = first
        self.pump = pump
        self.finish = finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        aborted = False
        try:
            await send(
                {"type": "http.response.start", "status": 200, "headers": _headers(SSE_HEADERS, self.headers)}
            )

            async def write(data: bytes) -> None:
                await send({"type": "http.response.body", "body": data, "more_body": True})

            if self.first:
                await write(self.first)
            pump: asyncio.Task[None] = asyncio.create_task(self.pump(write))
            watch = asyncio.create_task(_disconnected(receive))
            done, _ = await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
            if pump not in done:
                aborted = True
                pump.cancel()
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            if not aborted:
                with contextlib.suppress(Exception):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            aborted = True
        finally:
            await self.finish(aborted)


async def _disconnected(receive: Receive) -> None:
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            return
