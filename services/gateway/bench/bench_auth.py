"""Request authentication at the gateway (issue 3, performance).

The gateway and auth run as their own processes. Measured, at 1 and 50 concurrent clients:
- `GET /healthz` (no authentication) against `GET /v1/auth/me` with a sign-in token whose
  principal is cached (authentication = a cache hit; `/me` then asks auth for the user), over
  kept-alive connections; and auth's `GetMe` called straight over gRPC at the same concurrency,
  so what the gateway adds besides that call shows;
- the authentication step alone on a cache hit, in-process (credential → principal);
- sign-in with a wrong password against an unknown email (auth.md §10.5: same answer, same
  time), 50 each, straight to auth with production argon2id parameters (t=3, 64 MiB, p=4).

Target: ≤ 2 ms p99 added by authentication on a cache hit.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx
from google.protobuf.empty_pb2 import Empty
from proliferate.auth.token.signing import SigningKeys
from proliferate.devkit.bench import BenchEnv, percentile, summarize_ms, wait_http
from proliferate.devkit.infra import free_port
from proliferate.gateway.edge.authentication.authenticator import Authenticator
from proliferate.gateway.edge.authentication.cache import PrincipalCache
from proliferate.gateway.edge.authentication.credentials import Credential, CredentialKind, Source
from proliferate.gateway.edge.authentication.principal import principal_of
from proliferate.kit.errors import RemoteError
from proliferate.kit.principal import Principal, PrincipalKind
from proliferate.kit.rpc import ServiceClient, ServiceCredentials
from proliferate.protos.auth.v1 import auth_pb2 as pb
from proliferate.protos.auth.v1 import auth_pb2_grpc

SECRET = "bench-service-auth-secret-0123456789abcdef"  # noqa: S105 - a bench-only value
PASSWORD = "bench passphrase for auth"  # noqa: S105 - a bench-only value
WRONG_PASSWORD = "not the password"  # noqa: S105 - a bench-only value
WARMUP = 200
REQUESTS = 2000


def start(service: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", f"proliferate.{service}", "grpc", "http"]
            if service == "gateway"
            else [sys.executable, "-m", f"proliferate.{service}"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def load(base: str, path: str, headers: dict[str, str], concurrency: int, total: int) -> list[float]:
    """`total` GETs from `concurrency` clients over one warm keep-alive connection each."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:

        async def get() -> float:
            started = time.perf_counter()
            async with session.get(path) as response:
                body = await response.read()
                assert response.status == 200, body[:200]
            return time.perf_counter() - started

        await asyncio.gather(*(get() for _ in range(concurrency)))  # open the connections

        async def client_loop() -> None:
            for _ in range(total // concurrency):
                latencies.append(await get())

        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    return latencies


async def get_me_direct(auth_address: str, token: str, concurrency: int, total: int) -> list[float]:
    """Auth's `GetMe` for the same token, straight over gRPC: the part of `/me` that is not the
    gateway's."""
    client = ServiceClient("gateway", "auth", auth_address, ServiceCredentials(SECRET), default_timeout=30)
    stub = auth_pb2_grpc.AuthServiceStub(client.channel)
    latencies: list[float] = []
    try:
        reply = await client.call(
            stub.Authenticate,
            pb.AuthenticateRequest(
                credential=token, kind=pb.AuthenticateRequest.SIGN_IN, client=pb.ClientInfo(ip="127.0.0.1")
            ),
        )
        principal = principal_of(reply)

        async def client_loop(count: int) -> None:
            for _ in range(count):
                started = time.perf_counter()
                await client.call(stub.GetMe, Empty(), principal=principal)
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(client_loop(WARMUP // concurrency or 1) for _ in range(concurrency)))
        latencies.clear()
        await asyncio.gather(*(client_loop(total // concurrency) for _ in range(concurrency)))
    finally:
        await client.close()
    return latencies


async def cache_hit_latency() -> list[float]:
    """The gateway's authentication of a request whose principal is cached: credential → SHA-256
    key → principal, through the real `Authenticator` (auth is never called on a hit)."""
    cache = PrincipalCache()
    authenticator = Authenticator(rpc=None, cache=cache, tokens=None)  # type: ignore[arg-type]
    credential = Credential(CredentialKind.SIGN_IN, "x" * 43, Source.HEADER)
    principal = Principal(kind=PrincipalKind.USER, user_id="u", organization_id="o", credential_id="c")
    cache.put(credential.cache_key(""), principal, cache.generation)
    client = pb.ClientInfo(ip="127.0.0.1")
    samples = []
    for _ in range(20000):
        started = time.perf_counter()
        assert await authenticator.principal(credential, "", client) is principal
        samples.append(time.perf_counter() - started)
    return samples


async def sign_in_timing(auth_address: str) -> tuple[list[float], list[float]]:
    """50 wrong passwords (50 accounts) and 50 unknown emails, interleaved, straight to auth (each
    attempt from its own address, so the rate limits stay out of the figures)."""
    client = ServiceClient("gateway", "auth", auth_address, ServiceCredentials(SECRET), default_timeout=30)
    stub = auth_pb2_grpc.AuthServiceStub(client.channel)
    wrong: list[float] = []
    unknown: list[float] = []
    try:
        emails = [f"timing-{i}@example.com" for i in range(50)]
        for i, email in enumerate(emails):
            request = pb.SignUpRequest(
                email=email, password=PASSWORD, name="T", client=pb.ClientInfo(ip=f"10.1.{i}.1")
            )
            await client.call(stub.SignUp, request)
        for i, email in enumerate(emails):
            pair = [(email, wrong), (f"nobody-{i}@example.com", unknown)]
            for target, samples in pair if i % 2 else reversed(pair):  # alternate who goes first
                request = pb.SignInWithPasswordRequest(
                    email=target,
                    password=WRONG_PASSWORD,
                    client=pb.ClientInfo(ip=f"10.2.{i}.{len(samples)}"),
                )
                started = time.perf_counter()
                try:
                    await client.call(stub.SignInWithPassword, request)
                except RemoteError as exc:
                    assert exc.code == "invalid_credentials", exc.code
                samples.append(time.perf_counter() - started)
    finally:
        await client.close()
    return wrong, unknown


async def main(env: BenchEnv) -> None:
    auth_port, gateway_grpc, http_port = free_port(), free_port(), free_port()
    common = {
        "NATS_URL": env.nats_url,
        "SERVICE_AUTH_SECRET": SECRET,
        "PROLIFERATE_ENV": "test",
        "LOG_LEVEL": "warning",
        "AUTH_GRPC_ADDRESS": f"127.0.0.1:{auth_port}",
    }
    auth = start(
        "auth",
        {
            **common,
            "DATABASE_URL": env.platform_db.service_url("auth"),
            "GRPC_PORT": str(auth_port),
            "AUTH_SIGNING_KEYS": SigningKeys.generate_setting("bench"),
            "MAILER": "disabled",
        },
        env.workdir / "auth.log",
    )
    gateway = start(
        "gateway",
        {
            **common,
            "DATABASE_URL": env.platform_db.service_url("gateway"),
            "GRPC_PORT": str(gateway_grpc),
            "GATEWAY_PORT": str(http_port),
            "SIGN_IN_COOKIE_SECURE": "false",
        },
        env.workdir / "gateway.log",
    )
    base = f"http://127.0.0.1:{http_port}"
    try:
        await wait_http(f"{base}/healthz")
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for _ in range(100):
                signed_up = await client.post(
                    "/v1/auth/sign-up",
                    json={"email": "bench@example.com", "password": PASSWORD, "name": "Bench"},
                )
                if signed_up.status_code == 201:
                    break
                await asyncio.sleep(0.2)  # auth still starting
            token = client.cookies["proliferate_signin"]
        bearer = {"Authorization": f"Bearer {token}"}
        for concurrency in (1, 50):
            await load(base, "/healthz", {}, concurrency, WARMUP)
            await load(base, "/v1/auth/me", bearer, concurrency, WARMUP)
            health = await load(base, "/healthz", {}, concurrency, REQUESTS)
            me = await load(base, "/v1/auth/me", bearer, concurrency, REQUESTS)
            direct = await get_me_direct(f"127.0.0.1:{auth_port}", token, concurrency, REQUESTS)
            print(f"{concurrency:>2} client(s)  GET /healthz       {summarize_ms(health)}")
            print(f"{concurrency:>2} client(s)  GET /v1/auth/me    {summarize_ms(me)}")
            print(f"{concurrency:>2} client(s)  auth GetMe (gRPC)  {summarize_ms(direct)}")
            p50 = (percentile(me, 50) - percentile(health, 50)) * 1000
            p99 = (percentile(me, 99) - percentile(health, 99)) * 1000
            print(f"             /me - /healthz: p50 +{p50:.2f} ms · p99 +{p99:.2f} ms (authn + GetMe)")
            rest = p50 - percentile(direct, 50) * 1000
            print(f"             /me - /healthz - GetMe: p50 {rest:+.2f} ms (authentication, routing, JSON)")
        hit = await cache_hit_latency()
        print(
            f"authentication on a cache hit (in-process): p50 {percentile(hit, 50) * 1e6:.1f} µs · "
            f"p99 {percentile(hit, 99) * 1e6:.1f} µs  (target ≤ 2 ms p99 added)"
        )
        wrong, unknown = await sign_in_timing(f"127.0.0.1:{auth_port}")
        diff = (statistics.median(wrong) - statistics.median(unknown)) * 1000
        print(f"sign-in, wrong password: {summarize_ms(wrong)}")
        print(f"sign-in, unknown email:  {summarize_ms(unknown)}")
        print(f"median difference: {diff:+.2f} ms (auth.md §10.5: < 20 ms; production argon2id t=3 m=64 MiB)")
    finally:
        for process in (gateway, auth):
            process.terminate()
        for process in (gateway, auth):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
