"""B6: a revoked API key, a signed-out token or a removed member is refused within 2 s on
every gateway replica — the cached principals (TTL 30 s) are dropped by the auth events, not
waited out (auth.md §10.28)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from proliferate.devkit.pytest_plugin import register_canary
from proliferate.gateway.edge.authentication.credentials import Credential, CredentialKind, Source

from ..conftest import Stack  # noqa: TID252 - the shared test helpers

WITHIN_S = 2.0


async def refused_everywhere(stack: Stack, headers: dict[str, str]) -> float:
    """Seconds until every replica answers 401 for `headers` (fails after WITHIN_S)."""
    started = time.monotonic()
    pending = set(range(len(stack.gateways)))
    clients = {r: stack.client(r) for r in pending}
    while pending and time.monotonic() - started < WITHIN_S:
        for replica in list(pending):
            if (await clients[replica].get("/v1/auth/me", headers=headers)).status_code == 401:
                pending.discard(replica)
        await asyncio.sleep(0.02)
    assert not pending, f"replicas {sorted(pending)} still accepted the credential after {WITHIN_S}s"
    return time.monotonic() - started


def cached(stack: Stack, replica: int, kind: CredentialKind, value: str, org: str = "") -> bool:
    return stack.edge(replica).cache.get(Credential(kind, value, Source.HEADER).cache_key(org)) is not None


async def warm(stack: Stack, headers: dict[str, str]) -> None:
    for replica in range(len(stack.gateways)):
        client = stack.client(replica)
        for _ in range(2):
            assert (await client.get("/v1/auth/me", headers=headers)).status_code == 200


async def test_a_revoked_key_and_a_signed_out_token_are_refused_within_2s_on_every_replica(
    start_stack: Any,
) -> None:
    stack = await start_stack(replicas=2, worker=True)
    owner, leaver = await stack.sign_up(), await stack.sign_up()
    created = await owner.client.post("/v1/api-keys", json={"name": "ci"})
    key_id, key = created.json()["api_key"]["id"], register_canary(created.json()["key"])
    await warm(stack, owner.bearer(key))
    await warm(stack, leaver.bearer())
    for replica in (0, 1):
        assert cached(stack, replica, CredentialKind.API_KEY, key)
        assert cached(stack, replica, CredentialKind.SIGN_IN, leaver.token)

    revoked = await owner.client.delete(f"/v1/api-keys/{key_id}")  # through replica 0
    assert revoked.status_code == 204
    await refused_everywhere(stack, owner.bearer(key))

    replica_1 = httpx.AsyncClient(
        base_url=stack.url(1),
        cookies={"proliferate_signin": leaver.token},
        headers={"origin": "https://app.proliferate.test"},
    )
    stack.clients.append(replica_1)
    assert (await replica_1.post("/v1/auth/sign-out")).status_code == 204  # through replica 1
    await refused_everywhere(stack, leaver.bearer())
    # The owner's own sign-in was never touched.
    assert (await stack.client(1).get("/v1/auth/me", headers=owner.bearer())).status_code == 200


async def test_the_key_of_a_removed_member_is_refused_within_2s_on_every_replica(start_stack: Any) -> None:
    stack = await start_stack(replicas=2, worker=True)
    owner, member = await stack.sign_up(), await stack.sign_up()
    org = await stack.create_org(owner)
    member_id = await stack.add_member(owner, org, member)
    created = await member.client.post("/v1/api-keys", json={"name": "script"}, headers={"x-org-id": org})
    key = register_canary(created.json()["key"])
    await warm(stack, member.bearer(key))
    removed = await owner.client.delete(f"/v1/orgs/{org}/members/{member_id}", headers={"x-org-id": org})
    assert removed.status_code == 204
    await refused_everywhere(stack, member.bearer(key))


async def test_a_role_change_is_seen_within_2s(start_stack: Any) -> None:
    stack = await start_stack(replicas=2, worker=True)
    owner, member = await stack.sign_up(), await stack.sign_up()
    org = await stack.create_org(owner)
    member_id = await stack.add_member(owner, org, member)
    headers = {**member.bearer(), "x-org-id": org}
    for replica in (0, 1):
        assert (await stack.client(replica).get("/v1/auth/me", headers=headers)).json()["role"] == "member"
    await owner.client.patch(
        f"/v1/orgs/{org}/members/{member_id}", json={"role": "admin"}, headers={"x-org-id": org}
    )
    started = time.monotonic()
    roles = {}
    while time.monotonic() - started < WITHIN_S:
        roles = {
            r: (await stack.client(r).get("/v1/auth/me", headers=headers)).json()["role"] for r in (0, 1)
        }
        if set(roles.values()) == {"admin"}:
            break
        await asyncio.sleep(0.02)
    assert roles == {0: "admin", 1: "admin"}


async def test_switching_the_active_organization_is_seen_by_every_replica_within_2s(start_stack: Any) -> None:
    stack = await start_stack(replicas=2, worker=True)
    user = await stack.sign_up()
    team = await stack.create_org(user, "Team")  # becomes active
    await user.client.put("/v1/auth/active-organization", json={"organization_id": user.org_id})
    await warm(stack, user.bearer())
    switched = await user.client.put("/v1/auth/active-organization", json={"organization_id": team})
    assert switched.status_code == 200
    started = time.monotonic()
    seen: dict[int, str] = {}
    while time.monotonic() - started < WITHIN_S:
        seen = {
            r: (await stack.client(r).get("/v1/auth/me", headers=user.bearer())).json()["organization"]["id"]
            for r in (0, 1)
        }
        if set(seen.values()) == {team}:
            break
        await asyncio.sleep(0.02)
    assert seen == {0: team, 1: team}
