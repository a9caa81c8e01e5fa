"""Fixtures of the auth tests: the real auth service (gRPC + worker) on the test Postgres and
NATS, a movable clock, and a client that calls it the way the gateway does."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import pytest_asyncio
import sqlalchemy as sa
from google.protobuf.empty_pb2 import Empty
from proliferate.auth.bootstrap import definition
from proliferate.auth.sign_in.passwords import PasswordHasher
from proliferate.auth.token.signing import SigningKeys
from proliferate.devkit.pytest_plugin import TEST_SERVICE_AUTH_SECRET, register_canary
from proliferate.kit.db import Database, outbox_table
from proliferate.kit.errors import RemoteError
from proliferate.kit.principal import Principal, PrincipalKind
from proliferate.kit.rpc import ServiceClient, ServiceCredentials
from proliferate.protos.auth.v1 import auth_pb2 as pb
from proliferate.protos.auth.v1 import auth_pb2_grpc

PASSWORD = "correct horse battery staple"
APP_URL = "https://app.proliferate.test"
SIGNING_KEYS = SigningKeys.generate_setting("test-key-1")
FAST_HASHING = {
    "PASSWORD_HASH_TIME_COST": "1",
    "PASSWORD_HASH_MEMORY_KIB": "8192",
    "PASSWORD_HASH_PARALLELISM": "1",
}
register_canary(PASSWORD)

_KINDS = {
    pb.Principal.USER: PrincipalKind.USER,
    pb.Principal.API_KEY: PrincipalKind.API_KEY,
    pb.Principal.SERVICE: PrincipalKind.SERVICE,
    pb.Principal.SANDBOX: PrincipalKind.SANDBOX,
}


class FrozenClock:
    """A clock tests move by hand; it starts at the real time so server defaults stay close."""

    def __init__(self) -> None:
        self.current = datetime.now(UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


def principal_of(message: pb.Principal) -> Principal:
    return Principal(
        kind=_KINDS[message.kind],
        user_id=message.user_id,
        organization_id=message.organization_id,
        role=message.role,
        credential_id=message.credential_id,
        impersonator_user_id=message.impersonator_user_id,
        email=message.email,
        is_super_admin=message.is_super_admin,
    )


@dataclass
class Account:
    """A signed-up user as the tests see it."""

    email: str
    token: str
    principal: Principal

    @property
    def user_id(self) -> str:
        return self.principal.user_id

    @property
    def org_id(self) -> str:
        return self.principal.organization_id


@dataclass
class AuthApi:
    """Calls AuthService as the gateway does: service credential, forwarded principal."""

    client: ServiceClient
    db: Database
    clock: FrozenClock
    hasher: PasswordHasher
    grpc_port: int
    stub: auth_pb2_grpc.AuthServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self.stub = auth_pb2_grpc.AuthServiceStub(self.client.channel)

    async def call(self, method: str, request: Any = None, principal: Principal | None = None) -> Any:
        return await self.client.call(getattr(self.stub, method), request or Empty(), principal=principal)

    async def sign_up(self, email: str | None = None, name: str = "Ana", password: str = PASSWORD) -> Account:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        result = await self.call("SignUp", pb.SignUpRequest(email=email, password=password, name=name))
        register_canary(result.token)
        return Account(email, result.token, principal_of(result.principal))

    async def sign_in(self, email: str, password: str = PASSWORD, ip: str = "") -> pb.SignInResult:
        return await self.call(
            "SignInWithPassword",
            pb.SignInWithPasswordRequest(email=email, password=password, client=pb.ClientInfo(ip=ip)),
        )

    async def authenticate(self, token: str, org: str = "") -> Principal:
        request = pb.AuthenticateRequest(credential=token, requested_organization_id=org)
        if token.startswith("plf_"):
            request.kind = pb.AuthenticateRequest.API_KEY
        return principal_of(await self.call("Authenticate", request))

    async def as_member(self, account: Account) -> Principal:
        """The principal of a fresh Authenticate (what the gateway forwards)."""
        return await self.authenticate(account.token)

    async def create_org(self, account: Account, name: str = "Acme", slug: str | None = None) -> str:
        request = pb.CreateOrganizationRequest(name=name)
        if slug:
            request.slug = slug
        org = await self.call("CreateOrganization", request, await self.as_member(account))
        return str(org.id)

    async def add_member(self, owner: Account, org_id: str, invitee: Account, role: str = "member") -> str:
        """Invite `invitee` into `org_id` and accept with the mailed link; returns the member id."""
        principal = await self.authenticate(owner.token, org_id)
        await self.call(
            "CreateInvitation",
            pb.CreateInvitationRequest(organization_id=org_id, email=invitee.email, role=role),
            principal,
        )
        link = await self.wait_for_mail(invitee.email, "invitation")
        member = await self.call(
            "AcceptInvitation",
            pb.InvitationToken(token=link.rsplit("/", 1)[1]),
            await self.as_member(invitee),
        )
        return str(member.id)

    async def mails(self, recipient: str, kind: str | None = None) -> list[str]:
        async with self.db.unit_of_work() as session:
            rows = await session.execute(
                sa.text("SELECT kind, link FROM recorded_mails WHERE recipient = :r ORDER BY created_at, id"),
                {"r": recipient},
            )
            return [row.link for row in rows if kind is None or row.kind == kind]

    async def wait_for_mail(self, recipient: str, kind: str, count: int = 1, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            links = await self.mails(recipient, kind)
            if len(links) >= count:
                return links[count - 1]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {kind} mail #{count} for {recipient} within {timeout}s")

    async def outbox_subjects(self) -> list[str]:
        async with self.db.unit_of_work() as session:
            rows = await session.execute(
                sa.select(outbox_table.c.subject).order_by(outbox_table.c.created_at, outbox_table.c.id)
            )
            return [r.subject for r in rows]

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.db.unit_of_work() as session:
            return (await session.execute(sa.text(sql), params)).scalar()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.db.unit_of_work() as session:
            return list((await session.execute(sa.text(sql), params)).all())


def service_client(port: int, caller: str = "gateway") -> ServiceClient:
    return ServiceClient(caller, "auth", f"127.0.0.1:{port}", ServiceCredentials(TEST_SERVICE_AUTH_SECRET))


StartAuth = Callable[..., Awaitable[AuthApi]]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest_asyncio.fixture
async def start_auth(service_runner: Any, clock: FrozenClock) -> AsyncIterator[StartAuth]:
    """Start an auth replica (gRPC + worker); several calls make several replicas."""
    clients: list[ServiceClient] = []
    dbs: list[Database] = []

    async def start(
        roles: tuple[str, ...] = ("grpc",), overrides: dict[str, Any] | None = None, **env: str
    ) -> AuthApi:
        hasher = PasswordHasher(time_cost=1, memory_kib=8192, parallelism=1)
        chosen = {"clock": clock, "passwords": hasher, **(overrides or {})}
        settings = {
            "AUTH_SIGNING_KEYS": SIGNING_KEYS,
            "APP_URL": APP_URL,
            "MAILER": "record",
            **FAST_HASHING,
            **env,
        }
        running = await service_runner(definition(**chosen), roles, **settings)
        client = service_client(running.grpc_port)
        clients.append(client)
        db = Database(running.runtime.settings.database_url, "auth", pool_size=2)
        dbs.append(db)
        return AuthApi(client, db, clock, hasher, running.grpc_port)

    yield start
    for client in clients:
        await client.close()
    for db in dbs:
        await db.dispose()


@pytest_asyncio.fixture
async def auth(start_auth: StartAuth) -> AuthApi:
    """Auth serving gRPC only: events stay in the outbox (fast to start and stop)."""
    return await start_auth()


@pytest_asyncio.fixture
async def auth_worker(start_auth: StartAuth) -> AuthApi:
    """Auth with its worker too: the relay publishes, the mailer sends, the sweeper runs."""
    return await start_auth(("grpc", "worker"))


async def expect_error(
    awaitable: Awaitable[Any], code: str, status: grpc.StatusCode | None = None
) -> RemoteError:
    """Await `awaitable`, which must fail with the stable error `code` (and gRPC `status`)."""
    with pytest.raises(RemoteError) as caught:
        await awaitable
    error = caught.value
    assert error.code == code, f"expected {code}, got {error.code}: {error.message}"
    if status is not None:
        from proliferate.kit.errors import grpc_status

        assert grpc_status(error.kind) == status
    return error
