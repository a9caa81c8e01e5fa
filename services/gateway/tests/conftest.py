"""Fixtures of the gateway edge tests: the real auth service and the gateway's HTTP edge, both
started in-process with their own bootstraps on the test Postgres and NATS; clients talk HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest_asyncio
import sqlalchemy as sa
from proliferate.auth.bootstrap import definition as auth_definition
from proliferate.auth.sign_in.passwords import PasswordHasher
from proliferate.auth.token.signing import SigningKeys
from proliferate.devkit.pytest_plugin import register_canary
from proliferate.gateway.bootstrap import DEFINITION as GATEWAY
from proliferate.gateway.edge.context import EdgeContext
from proliferate.kit.db import Database
from proliferate.kit.runtime import RunningService

PASSWORD = "gateway tests passphrase"
APP_URL = "https://app.proliferate.test"
SIGNING_KEYS = SigningKeys.generate_setting("gw-test-1")
MAILS = "SELECT link FROM recorded_mails WHERE recipient = :r AND kind = :k ORDER BY created_at, id"
register_canary(PASSWORD)


@dataclass
class User:
    """A signed-up person and the HTTP client that holds their sign-in cookie."""

    email: str
    client: httpx.AsyncClient
    user_id: str
    org_id: str
    token: str

    def bearer(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}


@dataclass
class Stack:
    auth: RunningService[Any]
    gateways: list[RunningService[Any]]
    auth_db: Database
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def url(self, replica: int = 0) -> str:
        return f"http://127.0.0.1:{self.gateways[replica].http_port}"

    def edge(self, replica: int = 0) -> EdgeContext:
        assert self.gateways[replica].parts.http is not None
        edge: EdgeContext = self.gateways[replica].parts.http.app.state.edge
        return edge

    def client(self, replica: int = 0, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"origin": APP_URL, **kwargs.pop("headers", {})}
        client = httpx.AsyncClient(base_url=self.url(replica), timeout=15.0, headers=headers, **kwargs)
        self.clients.append(client)
        return client

    async def sign_up(self, email: str | None = None, name: str = "Ana", replica: int = 0) -> User:
        email = email or f"u-{uuid.uuid4().hex[:10]}@example.com"
        client = self.client(replica)
        response = await client.post(
            "/v1/auth/sign-up", json={"email": email, "password": PASSWORD, "name": name}
        )
        assert response.status_code == 201, response.text
        token = register_canary(client.cookies["proliferate_signin"])
        body = response.json()
        return User(email, client, body["user_id"], body["organization_id"], token)

    async def mail_link(self, recipient: str, kind: str, count: int = 1, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with self.auth_db.unit_of_work() as session:
                rows = await session.execute(sa.text(MAILS), {"r": recipient, "k": kind})
                links = [r.link for r in rows]
            if len(links) >= count:
                return str(links[count - 1])
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {kind} mail for {recipient}")

    async def create_org(self, owner: User, name: str = "Team") -> str:
        response = await owner.client.post("/v1/orgs", json={"name": name})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def add_member(self, owner: User, org_id: str, invitee: User, role: str = "member") -> str:
        response = await owner.client.post(
            f"/v1/orgs/{org_id}/invitations",
            json={"email": invitee.email, "role": role},
            headers={"x-org-id": org_id},
        )
        assert response.status_code == 201, response.text
        token = (await self.mail_link(invitee.email, "invitation")).rsplit("/", 1)[1]
        accepted = await invitee.client.post(f"/v1/invitations/{token}/accept")
        assert accepted.status_code == 200, accepted.text
        return str(accepted.json()["id"])


StartStack = Callable[..., Awaitable[Stack]]


def auth_env(**extra: str) -> dict[str, str]:
    return {
        "AUTH_SIGNING_KEYS": SIGNING_KEYS,
        "APP_URL": APP_URL,
        "MAILER": "record",
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "8192",
        "PASSWORD_HASH_PARALLELISM": "1",
        **extra,
    }


def gateway_env(auth_port: int, **extra: str) -> dict[str, str]:
    return {
        "AUTH_GRPC_ADDRESS": f"127.0.0.1:{auth_port}",
        "APP_URL": APP_URL,
        "SIGN_IN_COOKIE_SECURE": "false",
        **extra,
    }


@pytest_asyncio.fixture
async def start_stack(service_runner: Any, platform_db: Any) -> AsyncIterator[StartStack]:
    made: list[Stack] = []

    async def start(
        replicas: int = 1,
        worker: bool = False,
        auth_overrides: dict[str, Any] | None = None,
        auth_settings: dict[str, str] | None = None,
        gateway_settings: dict[str, str] | None = None,
    ) -> Stack:
        overrides = {
            "passwords": PasswordHasher(time_cost=1, memory_kib=8192, parallelism=1),
            **(auth_overrides or {}),
        }
        auth = await service_runner(
            auth_definition(**overrides), ("grpc", "worker"), **auth_env(**(auth_settings or {}))
        )
        gateways = [
            await service_runner(
                GATEWAY, ("http",), **gateway_env(auth.grpc_port, **(gateway_settings or {}))
            )
            for _ in range(replicas)
        ]
        stack = Stack(auth, gateways, Database(platform_db.service_url("auth"), "auth", pool_size=2))
        made.append(stack)
        return stack

    yield start
    for stack in made:
        for client in stack.clients:
            await client.aclose()
        await stack.auth_db.dispose()


@pytest_asyncio.fixture
async def stack(start_stack: StartStack) -> Stack:
    """One gateway and auth serving gRPC only: events stay in auth's outbox."""
    return await start_stack()


@pytest_asyncio.fixture
async def stack_worker(start_stack: StartStack) -> Stack:
    """One gateway and auth with its worker: events reach the bus, mails are recorded."""
    return await start_stack(worker=True)
