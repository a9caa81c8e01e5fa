"""B3: a team's identity journey through the gateway over HTTP, with auth and the gateway as
real processes: sign-up → sign-in → /me → create org → switch → invite → accept → role change
→ removal."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import psycopg
from proliferate.auth.token.signing import SigningKeys
from proliferate.devkit.infra import free_port
from proliferate.devkit.platform import PlatformDatabase
from proliferate.devkit.pytest_plugin import register_canary
from proliferate.kit.db import libpq_url

APP_URL = "https://app.proliferate.test"
PASSWORD = register_canary("end-to-end passphrase 42")
LATEST_MAIL = (
    "SELECT link FROM auth.recorded_mails WHERE recipient = %s AND kind = %s ORDER BY created_at DESC LIMIT 1"
)


async def mailed_link(platform_db: PlatformDatabase, recipient: str, kind: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(libpq_url(platform_db.service_url("auth"))) as conn:
            row = conn.execute(LATEST_MAIL, (recipient, kind)).fetchone()
        if row:
            return str(row[0])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {kind} mail for {recipient}")


async def test_sign_up_to_removal_through_the_gateway(
    databases: Any, nats_client: Any, spawn: Any, platform_db: PlatformDatabase
) -> None:
    """(`databases` and `nats_client`, torn down after `spawn` killed the processes, leave the
    schemas and the streams empty for the next test.)"""
    auth_port, gateway_port = free_port(), free_port()
    auth = spawn(
        "auth",
        GRPC_PORT=str(auth_port),
        AUTH_SIGNING_KEYS=SigningKeys.generate_setting("e2e-1"),
        MAILER="record",
        APP_URL=APP_URL,
        PASSWORD_HASH_TIME_COST="1",
        PASSWORD_HASH_MEMORY_KIB="8192",
        PASSWORD_HASH_PARALLELISM="1",
    ).start()
    gateway = spawn(
        "gateway",
        GATEWAY_PORT=str(gateway_port),
        AUTH_GRPC_ADDRESS=f"127.0.0.1:{auth_port}",
        APP_URL=APP_URL,
        SIGN_IN_COOKIE_SECURE="false",
    ).start()
    await asyncio.gather(auth.wait_serving(), gateway.wait_serving())
    base = f"http://127.0.0.1:{gateway_port}"
    headers = {"origin": APP_URL}
    async with (
        httpx.AsyncClient(base_url=base, headers=headers, timeout=20) as ana,
        httpx.AsyncClient(base_url=base, headers=headers, timeout=20) as bruno,
    ):
        # Sign-up, then a fresh sign-in, then who am I.
        signed_up = await ana.post(
            "/v1/auth/sign-up", json={"email": "ana@acme.io", "password": PASSWORD, "name": "Ana"}
        )
        assert signed_up.status_code == 201, signed_up.text
        personal_org = signed_up.json()["organization_id"]
        register_canary(ana.cookies["proliferate_signin"])
        ana.cookies.clear()
        signed_in = await ana.post("/v1/auth/sign-in", json={"email": "ana@acme.io", "password": PASSWORD})
        assert signed_in.status_code == 200
        register_canary(ana.cookies["proliferate_signin"])
        me = (await ana.get("/v1/auth/me")).json()
        assert (me["user"]["email"], me["organization"]["id"], me["role"]) == (
            "ana@acme.io",
            personal_org,
            "owner",
        )

        # A team organization, made active.
        created = await ana.post("/v1/orgs", json={"name": "Acme", "slug": "acme-e2e"})
        assert created.status_code == 201
        team = created.json()["id"]
        switched = await ana.put("/v1/auth/active-organization", json={"organization_id": personal_org})
        assert switched.json()["organization_id"] == personal_org
        switched = await ana.put("/v1/auth/active-organization", json={"organization_id": team})
        assert (switched.status_code, switched.json()["organization_id"]) == (200, team)
        assert (await ana.get("/v1/auth/me")).json()["organization"]["slug"] == "acme-e2e"

        # Invite Bruno, who signs up and accepts with the mailed link.
        invited = await ana.post(
            f"/v1/orgs/{team}/invitations", json={"email": "bruno@acme.io", "role": "member"}
        )
        assert invited.status_code == 201, invited.text
        assert (
            await bruno.post(
                "/v1/auth/sign-up", json={"email": "bruno@acme.io", "password": PASSWORD, "name": "Bruno"}
            )
        ).status_code == 201
        register_canary(bruno.cookies["proliferate_signin"])
        token = (await mailed_link(platform_db, "bruno@acme.io", "invitation")).rsplit("/", 1)[1]
        preview = await bruno.get(f"/v1/invitations/{token}")
        assert (preview.json()["organization_name"], preview.json()["role"]) == ("Acme", "member")
        accepted = await bruno.post(f"/v1/invitations/{token}/accept")
        assert accepted.status_code == 200
        member_id = accepted.json()["id"]
        bruno_me = (await bruno.get("/v1/auth/me")).json()
        assert (bruno_me["organization"]["id"], bruno_me["role"]) == (team, "member")

        # Role change, seen by Bruno's next request.
        changed = await ana.patch(f"/v1/orgs/{team}/members/{member_id}", json={"role": "admin"})
        assert (changed.status_code, changed.json()["role"]) == (200, "admin")
        assert await eventually(lambda: bruno.get("/v1/auth/me"), lambda r: r.json()["role"] == "admin")

        # Removal: Bruno can no longer see the team and falls back to his personal org.
        removed = await ana.delete(f"/v1/orgs/{team}/members/{member_id}")
        assert removed.status_code == 204
        gone = await bruno.get(f"/v1/orgs/{team}")
        assert (gone.status_code, gone.json()["error"]["code"]) == (404, "organization_not_found")
        assert await eventually(
            lambda: bruno.get("/v1/auth/me"), lambda r: r.json()["organization"]["id"] != team
        )
        members = (await ana.get(f"/v1/orgs/{team}/members")).json()["members"]
        assert [m["email"] for m in members] == ["ana@acme.io"]


async def eventually(call: Any, ok: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok(await call()):
            return True
        await asyncio.sleep(0.05)
    return False
