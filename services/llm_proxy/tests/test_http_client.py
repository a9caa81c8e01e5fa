"""The pass-through path's HTTP client against small servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from proliferate.llm_proxy.llm_request.http_client import HttpClient, HttpClientError, split_url

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0


@asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        number = 0
        try:
            while not reader.at_eof():
                try:
                    server.requests.append(await read_request(reader))
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                number += 1
                await handler(reader, writer, number)
                if writer.is_closing():
                    return
        finally:
            writer.close()

    listening = await asyncio.start_server(on_connection, "127.0.0.1", 0, ssl=tls)
    server.port = listening.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listening.close()


async def post(client: HttpClient, server: Server, *, timeout: float = 10, scheme: str = "http") -> object:
    return await client.post(
        f"{scheme}://127.0.0.1:{server.port}/v1/chat/completions",
        {"content-type": "application/json", "authorization": "Bearer sk-vendor"},
        b'{"model": "m"}',
        connect_timeout=5,
        timeout=timeout,
    )


async def test_chunks_come_as_sent_and_the_connection_serves_the_next_request() -> None:
    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        writer.write(SSE_HEAD)
        for text in (b"data: one\n\n", b"data: two\n\n", b"data: [DONE]\n\n"):
            writer.write(chunk(text))
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.write(b"0\r\n\r\n")

    client = HttpClient()
    async with serving(stream) as server:
        for _ in range(3):
            response = await post(client, server)
            assert response.status == 200 and response.headers["content-type"] == "text/event-stream"
            assert [await response.chunk() for _ in range(4)] == [
                b"data: one\n\n",
                b"data: two\n\n",
                b"data: [DONE]\n\n",
                b"",
            ]
        request = server.requests[0]
        assert request.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{server.port}".encode() in request
        assert request.endswith(b'Content-Length: 14\r\n\r\n{"model": "m"}')
        assert server.connections == 1
    await client.close()


async def test_a_response_released_before_its_last_bytes_still_returns_its_connection() -> None:
    async def late_end(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        writer.write(SSE_HEAD + chunk(b"data: [DONE]\n\n"))
        await writer.drain()
        await asyncio.sleep(0.1)  # the terminator trails the final event
        writer.write(b"0\r\n\r\n")

    client = HttpClient()
    async with serving(late_end) as server:
        response = await post(client, server)
        assert await response.chunk() == b"data: [DONE]\n\n"
        response.release()
        await asyncio.sleep(0.2)
        second = await post(client, server)
        assert await second.read() == b"data: [DONE]\n\n"
        assert server.connections == 1
    await client.close()


async def test_length_delimited_and_gzip_bodies_are_read_whole() -> None:
    body = b'{"usage": {"prompt_tokens": 3}}'

    async def whole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        data, extra = (body, b"") if number == 1 else (gzip.compress(body), b"content-encoding: gzip\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n%scontent-length: %d\r\n\r\n%s" % (extra, len(data), data))

    client = HttpClient()
    async with serving(whole) as server:
        assert await (await post(client, server)).read() == body
        assert await (await post(client, server)).read() == body
        assert server.connections == 1
    await client.close()


async def test_a_pooled_connection_the_server_dropped_unanswered_is_retried_on_a_new_one() -> None:
    async def drops_second(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        if number == 2:  # the server's idle timeout closed it as the request arrived
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    client = HttpClient()
    async with serving(drops_second) as server:
        assert await (await post(client, server)).read() == b"ok"
        assert await (await post(client, server)).read() == b"ok"
        assert server.connections == 2
    await client.close()


async def test_a_connection_lost_mid_body_raises_an_oserror() -> None:
    async def breaks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        writer.write(SSE_HEAD + chunk(b"data: one\n\n"))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    client = HttpClient()
    async with serving(breaks) as server:
        response = await post(client, server)
        assert await response.chunk() == b"data: one\n\n"
        with pytest.raises(OSError, match="closed before the response ended"):
            await response.chunk()
    await client.close()


async def test_a_quiet_response_times_out_per_read_and_then_by_its_deadline() -> None:
    async def quiet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        writer.write(SSE_HEAD)
        await writer.drain()
        await asyncio.sleep(2)

    client = HttpClient()
    async with serving(quiet) as server:
        response = await post(client, server, timeout=0.5)
        assert await response.chunk(0.05) is None  # nothing yet: the caller sends a keep-alive
        with pytest.raises(TimeoutError):
            await response.chunk(5)
    await client.close()


async def test_a_server_that_never_answers_times_out_and_a_closed_port_is_an_oserror() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        await asyncio.sleep(2)

    client = HttpClient()
    async with serving(silent) as server:
        with pytest.raises(TimeoutError):
            await post(client, server, timeout=0.2)
    with pytest.raises(HttpClientError, match="could not connect"):
        await post(client, server)
    await client.close()


async def test_reading_pauses_while_the_caller_lags_and_nothing_is_lost() -> None:
    blob = bytes(range(256)) * 4096  # 1 MiB

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(blob))
        for start in range(0, len(blob), 65536):
            writer.write(blob[start : start + 65536])
            await writer.drain()

    client = HttpClient()
    async with serving(flood) as server:
        response = await post(client, server)
        await asyncio.sleep(0.3)
        connection = response._connection
        assert connection is not None and connection.transport is not None
        assert not connection.transport.is_reading()  # paused at PAUSE_ABOVE_BYTES buffered
        assert await response.read() == blob
        assert connection.transport.is_reading() or connection.closed
    await client.close()


def _certificates(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A root and a certificate for 127.0.0.1: the server's context and a client's trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test root")])
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file, root_file = tmp_path / "leaf.pem", tmp_path / "leaf.key", tmp_path / "root.pem"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    root_file.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=str(root_file))


async def test_https_verifies_the_vendors_certificate(tmp_path: Path) -> None:
    server_tls, trusting = _certificates(tmp_path)

    async def ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    async with serving(ok, tls=server_tls) as server:
        client = HttpClient(tls=trusting)
        assert await (await post(client, server, scheme="https")).read() == b"ok"
        await client.close()
        untrusting = HttpClient()  # the system's and certifi's roots do not know the test root
        with pytest.raises(HttpClientError, match="CERTIFICATE_VERIFY_FAILED"):
            await post(untrusting, server, scheme="https")
        await untrusting.close()


@pytest.mark.parametrize(
    ("url", "host", "target"),
    [
        ("https://api.openai.com/v1/chat/completions", "api.openai.com", "/v1/chat/completions"),
        (
            "http://vendor.internal:8080/v1/messages?beta=true",
            "vendor.internal:8080",
            "/v1/messages?beta=true",
        ),
        ("http://[::1]:4000/v1/chat/completions", "[::1]:4000", "/v1/chat/completions"),
        ("https://[2001:db8::1]/v1", "[2001:db8::1]", "/v1"),
    ],
)
def test_the_host_header_and_target_of_a_vendor_url(url: str, host: str, target: str) -> None:
    origin, path = split_url(url)
    assert (origin.host_header, path) == (host, target)


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="not an http"):
        split_url("ftp://vendor/v1")
