"""Auth unreachable or too slow → 503 `auth_unavailable`, never 500 and never let through."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import httpx
from proliferate.devkit.infra import free_port
from proliferate.devkit.pytest_plugin import TEST_SERVICE_AUTH_SECRET
from proliferate.gateway.bootstrap import DEFINITION as GATEWAY
from proliferate.kit.rpc import GrpcServer, ServiceCredentials
from proliferate.protos.auth.v1 import auth_pb2 as pb

from ..conftest import APP_URL, PASSWORD, gateway_env  # noqa: TID252 - the shared test helpers


async def call_all(base_url: str) -> list[tuple[int, str]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=15.0, headers={"origin": APP_URL}) as client:
        answers = [
            await client.get("/v1/auth/me", headers={"authorization": "Bearer some-sign-in-token"}),
            await client.get("/v1/auth/me", headers={"authorization": "Bearer plf_abcdefghijkl_secret"}),
            await client.post("/v1/auth/sign-in", json={"email": "a@example.com", "password": PASSWORD}),
        ]
    async with httpx.AsyncClient(
        base_url=base_url, timeout=15.0, cookies={"proliferate_signin": "cookie"}
    ) as client:
        answers.append(await client.get("/v1/auth/me"))
    return [(r.status_code, r.json()["error"]["code"]) for r in answers]


async def test_auth_down_is_503_auth_unavailable(service_runner: Any) -> None:
    gateway = await service_runner(GATEWAY, ("http",), **gateway_env(free_port()))
    answers = await call_all(f"http://127.0.0.1:{gateway.http_port}")
    assert answers == [(503, "auth_unavailable")] * 4


async def test_auth_slower_than_the_deadline_is_503_auth_unavailable(service_runner: Any) -> None:
    async def hang(request: Any, context: Any) -> Any:
        await asyncio.sleep(10)

    def add(_: Any, server: grpc.aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            hang,
            request_deserializer=pb.AuthenticateRequest.FromString,
            response_serializer=lambda m: m.SerializeToString(),
        )
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "proliferate.auth.v1.AuthService", {"Authenticate": handler}
                ),
            )
        )

    slow = GrpcServer("auth", ServiceCredentials(TEST_SERVICE_AUTH_SECRET), port=0, grace_seconds=0.1)
    slow.register("proliferate.auth.v1.AuthService", add, None, {"*": {"gateway"}})
    await slow.start()
    try:
        gateway = await service_runner(GATEWAY, ("http",), **gateway_env(slow.port))
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=15.0
        ) as client:
            response = await client.get("/v1/auth/me", headers={"authorization": "Bearer some-sign-in-token"})
        assert (response.status_code, response.json()["error"]["code"]) == (503, "auth_unavailable")
    finally:
        await slow.stop()
