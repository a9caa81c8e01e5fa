"""A lean HTTP/1.1 client for the pass-through path: POST, then the response's bytes as they come.

The pass-through path makes one vendor call per LLM request and relays every chunk of it, so
the client's own cost is paid on every token: aiohttp spent ~170 µs of CPU per streamed
request more than this (bench_proxy). What it keeps of a general client: one keep-alive pool
per origin (idle connections dropped after `idle_s`), TLS with the system's and certifi's
roots, chunked and length-delimited bodies (httptools, the parser uvicorn uses), gzip/deflate
bodies, a connect timeout, a deadline for the whole response, and backpressure (reading
pauses while the caller has not taken what arrived).

A request sent on a reused connection that the server closes before answering a single byte
is sent once more on a new connection: the server dropped the idle connection as the request
went out (the keep-alive race), so it never read it.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import certifi
import httptools

PAUSE_ABOVE_BYTES = 256 * 1024
# A body's last bytes (the chunked terminator) may trail the event that ended it.
RELEASE_WAIT_S = 2.0
_TIMED_OUT = object()


class HttpClientError(OSError):
    """The connection failed, closed early, or the server's bytes were not HTTP."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal
        return host if self.port == default else f"{host}:{self.port}"


def split_url(url: str) -> tuple[Origin, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Origin(parts.scheme, parts.hostname, port), target


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; at most one response in progress."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.used = False
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.received = False
        self.complete = False
        self.keep_alive = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[Any] | None = None
        self.decompressor: Any = None
        self.paused = False
        self.on_complete: Callable[[_Connection], None] | None = None
        self.give_up: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpClientError(f"the server's response is not HTTP: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete:
            return
        if self.status is not None and not self._framed():
            self.complete = True  # a body delimited by the end of the connection
            self._wake()
            return
        self._fail(HttpClientError(f"the connection closed before the response ended ({exc or 'EOF'})"))

    # --- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        encoding = self.headers.get("content-encoding", "identity").lower()
        if encoding in ("gzip", "deflate"):
            self.decompressor = zlib.decompressobj(zlib.MAX_WBITS | 32)  # either header
        elif encoding not in ("identity", ""):
            self._fail(HttpClientError(f"unsupported content-encoding {encoding!r}"))
        self._wake()

    def on_body(self, body: bytes) -> None:
        data = self.decompressor.decompress(body) if self.decompressor is not None else bytes(body)
        if data:
            self.chunks.append(data)
            self.buffered += len(data)
            if self.buffered > PAUSE_ABOVE_BYTES and not self.paused and self.transport is not None:
                self.paused = True
                self.transport.pause_reading()
            self._wake()

    def on_message_complete(self) -> None:
        if self.decompressor is not None:
            rest = self.decompressor.flush()
            if rest:
                self.chunks.append(rest)
        # Asked now: once the message is over the parser no longer knows.
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True
        self._wake()
        if self.on_complete is not None and self.error is None:
            if self.give_up is not None:
                self.give_up.cancel()
            self.on_complete(self)

    # --- used by Response ------------------------------------------------------------------

    def _framed(self) -> bool:
        return "content-length" in self.headers or "chunked" in self.headers.get("transfer-encoding", "")

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.close()
        self._wake()

    def _wake(self, _: object = None) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float | None) -> bool:
        """Until something happens; False if `timeout` passed first."""
        loop = asyncio.get_running_loop()
        waiter = self.waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            return await waiter is not _TIMED_OUT
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()

    def take(self) -> bytes:
        data = self.chunks.popleft() if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()
        return data

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self._reset()
        self.transport.write(data)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(_TIMED_OUT)


class Response:
    """A response whose status and headers have arrived; its body is read with `chunk()`."""

    def __init__(self, client: HttpClient, connection: _Connection, deadline: float) -> None:
        self._client = client
        self._connection: _Connection | None = connection
        self._deadline = deadline
        self.status = connection.status or 0
        self.headers = connection.headers

    async def chunk(self, timeout: float | None = None) -> bytes | None:
        """The next bytes of the body; `b""` at its end; None if nothing came within `timeout`."""
        connection = self._connection
        if connection is None:
            return b""
        while True:
            if connection.chunks:
                return connection.take()
            if connection.error is not None:
                self.close()
                raise connection.error
            if connection.complete:
                self._release()
                return b""
            left = self._deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise TimeoutError("the vendor's response took longer than the request timeout")
            wait = left if timeout is None else min(timeout, left)
            if not await connection.wait(wait) and (timeout is not None and timeout <= left):
                return None

    async def read(self) -> bytes:
        parts: list[bytes] = []
        while chunk := await self.chunk():
            parts.append(chunk)
        return b"".join(parts)

    def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._client._release(connection)

    def release(self) -> None:
        """Done with the body: the connection goes back to the pool once the response has ended,
        or is closed if it does not end within `RELEASE_WAIT_S`."""
        connection = self._connection
        if connection is None:
            return
        if connection.error is not None or connection.closed:
            self.close()
        elif connection.complete:
            self._release()
        else:
            self._connection = None
            connection.on_complete = self._client._release
            connection.give_up = asyncio.get_running_loop().call_later(RELEASE_WAIT_S, connection.close)

    def close(self) -> None:
        """Drop the connection (a body not read to its end cannot be reused)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


class HttpClient:
    def __init__(self, *, idle_s: float = 15.0, tls: ssl.SSLContext | None = None) -> None:
        self.idle_s = idle_s
        self._idle: dict[Origin, list[_Connection]] = {}
        self._ssl = tls

    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        connect_timeout: float,
        timeout: float,
    ) -> Response:
        """Send the request; return once the response's status and headers have arrived."""
        origin, target = split_url(url)
        deadline = time.monotonic() + timeout
        lines = [f"POST {target} HTTP/1.1", f"Host: {origin.host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        connection = self._reused(origin)
        if connection is not None:
            try:
                return await self._exchange(connection, request, deadline)
            except HttpClientError:
                if connection.received:
                    raise
                # The keep-alive race: closed by the server before it read the request.
        connection = await self._connect(origin, min(connect_timeout, max(deadline - time.monotonic(), 0)))
        return await self._exchange(connection, request, deadline)

    async def _exchange(self, connection: _Connection, request: bytes, deadline: float) -> Response:
        connection.used = True
        connection.send(request)
        try:
            while connection.status is None:
                if connection.error is not None:
                    raise connection.error
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the vendor did not answer within the request timeout")
                await connection.wait(left)
        except BaseException:
            connection.close()
            raise
        return Response(self, connection, deadline)

    def _reused(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            transport = connection.transport
            if connection.closed or transport is None or transport.is_closing():
                continue
            if now - connection.idle_since > self.idle_s:
                connection.close()
                continue
            return connection
        return None

    async def _connect(self, origin: Origin, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = self._tls() if origin.scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(origin),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls is not None else None,
                )
        except TimeoutError:
            raise TimeoutError(f"could not connect to {origin.host}:{origin.port} in time") from None
        except OSError as exc:
            raise HttpClientError(f"could not connect to {origin.host}:{origin.port}: {exc}") from None
        return connection

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = ssl.create_default_context()  # the system's roots (and SSL_CERT_FILE)
            context.load_verify_locations(certifi.where())
            self._ssl = context
        return self._ssl

    def _release(self, connection: _Connection) -> None:
        if connection.closed or not connection.keep_alive:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.origin, []).append(connection)

    async def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports close
