"""The HTTP edge itself: idle connections kept as configured, other paths answered by Litestar."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from proliferate.devkit.infra import free_port
from proliferate.kit.settings import ServiceSettings, load_settings
from proliferate.llm_proxy.bootstrap import DEFINITION
from proliferate.scripted_model import ScriptedModel, Turn, Usage

from .conftest import Proxy, proxy_env, write_models_file

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: proxy\r\n\r\n"


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(HEALTHZ)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))[15:]
    )
    await reader.readexactly(length)
    return head


async def test_an_idle_connection_stays_open_for_the_configured_keepalive(
    service_runner: Any, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    # A client reusing a connection the server has just closed sees its request fail; the
    # default (75 s) outlasts the idle timeout of common clients and load balancers.
    required = {
        "DATABASE_URL": "postgresql://db/x",
        "NATS_URL": "nats://bus",
        "SERVICE_AUTH_SECRET": "s" * 32,
    }
    assert load_settings(ServiceSettings, required).http_keepalive_seconds == 75
    port = free_port()
    models = write_models_file(tmp_path, scripted_model)
    await service_runner(DEFINITION, **proxy_env(models, port, HTTP_KEEPALIVE_SECONDS="1"))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert (await _answer(reader, writer)).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.4)
        assert (await _answer(reader, writer)).startswith(b"HTTP/1.1 200")  # the same connection
        await asyncio.sleep(1.8)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server once idle 1 s
    finally:
        writer.close()


async def test_paths_other_than_the_two_llm_routes_go_through_litestar(proxy: Proxy) -> None:
    assert (await proxy.http.get(f"{proxy.url}/healthz")).json() == {"status": "ok"}
    wrong_method = await proxy.http.get(f"{proxy.url}/v1/chat/completions")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    schema = (await proxy.http.get(f"{proxy.url}/openapi.json")).json()
    assert {"/v1/chat/completions", "/v1/messages"} <= set(schema["paths"])


async def test_the_litestar_declarations_of_the_llm_routes_answer_like_the_edge(proxy: Proxy) -> None:
    # They stay for the OpenAPI document and for any mount without `LlmEdge`: same service call.
    assert proxy.running is not None and proxy.running.parts.http is not None
    litestar_app = proxy.running.parts.http.app.app
    issued = await proxy.issue()
    proxy.scripted.script(Turn(text="through litestar", usage=Usage(input_tokens=5, output_tokens=2)))
    body = {"model": "scripted-gpt", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=litestar_app), base_url="http://edge"
    ) as http:
        answered = await http.post(
            "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {issued.key}"}
        )
        refused = await http.post(
            "/v1/messages", json=body, headers={"x-api-key": "sk-pvk-unknown-key-000000"}
        )
    assert answered.status_code == 200
    assert answered.json()["choices"][0]["message"]["content"] == "through litestar"
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "invalid_api_key"
    [record] = await proxy.wait_records(lambda rows: rows and rows[0]["status"] != "in_flight")
    assert (record["prompt_tokens"], record["completion_tokens"]) == (5, 2)
