"""Virtual keys at the edge (llm-proxy.md §10.8, §10.24): two headers, one 401 for every bad key."""

from __future__ import annotations

import time
import uuid

from proliferate.llm_proxy.virtual_key.cache import KeyCache, KeyGrant
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2 as pb
from proliferate.scripted_model import Turn

from .conftest import Proxy, eventually

OPENAI_401 = {
    "error": {"type": "authentication_error", "code": "invalid_api_key", "message": "invalid API key"}
}
ANTHROPIC_401 = {"type": "error", "error": {"type": "invalid_api_key", "message": "invalid API key"}}


async def test_bearer_and_x_api_key_both_authenticate(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(Turn(text="ok", times=None))
    body = {"model": "scripted-gpt", "messages": [{"role": "user", "content": "hi"}]}
    url = f"{proxy.url}/v1/chat/completions"
    assert (
        await proxy.http.post(url, json=body, headers={"authorization": f"Bearer {issued.key}"})
    ).status_code == 200
    assert (await proxy.http.post(url, json=body, headers={"x-api-key": issued.key})).status_code == 200
    assert (
        await proxy.http.post(url, json=body, headers={"authorization": f"bearer {issued.key}"})
    ).status_code == 200


async def test_missing_unknown_revoked_and_expired_keys_get_one_401_body(proxy: Proxy) -> None:
    org = uuid.uuid4()
    proxy.scripted.script(Turn(text="ok", times=None))
    revoked = await proxy.issue(org)
    assert (await proxy.chat(revoked.key)).status_code == 200
    await proxy.rpc(
        "RevokeVirtualKeys",
        pb.RevokeVirtualKeysRequest(organization_id=str(org), virtual_key_id=revoked.virtual_key_id),
    )
    expired = await proxy.issue(org)
    proxy.query(
        "UPDATE virtual_keys SET expires_at = now() - interval '1 second' WHERE id = %s",
        uuid.UUID(expired.virtual_key_id),
    )
    await eventually(lambda: _status(proxy, revoked.key, 401), timeout=5)
    reached = len(proxy.scripted.requests)

    body = {"model": "scripted-gpt", "messages": [{"role": "user", "content": "hi"}]}
    url = f"{proxy.url}/v1/chat/completions"
    answers = [
        await proxy.http.post(url, json=body),
        await proxy.http.post(url, json=body, headers={"authorization": "Bearer sk-pvk-" + "A" * 43}),
        await proxy.http.post(url, json=body, headers={"authorization": "Bearer not-even-a-key"}),
        await proxy.http.post(url, json=body, headers={"authorization": "Basic abc"}),
        await proxy.chat(revoked.key),
        await proxy.chat(expired.key),  # refused at once: never usable, whatever the cache
    ]
    assert [a.status_code for a in answers] == [401] * 6
    assert all(a.json() == OPENAI_401 for a in answers)
    assert len({a.content for a in answers}) == 1
    anthropic = [await proxy.message(key) for key in ("", "sk-pvk-unknown", revoked.key, expired.key)]
    assert all(a.status_code == 401 and a.json() == ANTHROPIC_401 for a in anthropic)
    assert len(proxy.scripted.requests) == reached  # no refused request reached the vendor


async def _status(proxy: Proxy, key: str, status: int) -> bool:
    return (await proxy.chat(key)).status_code == status


async def test_expired_keys_are_marked_by_the_sweeper(proxy: Proxy) -> None:
    issued = await proxy.issue()
    live = await proxy.issue()
    proxy.query(
        "UPDATE virtual_keys SET expires_at = now() - interval '1 minute' WHERE id = %s",
        uuid.UUID(issued.virtual_key_id),
    )
    assert proxy.running is not None
    [job] = [j for j in proxy.running.parts.jobs if j.name == "llm-proxy-expire-keys"]
    await job.run()
    rows = {r["key_prefix"]: r["status"] for r in proxy.query("SELECT key_prefix, status FROM virtual_keys")}
    assert rows == {issued.key_prefix: "expired", live.key_prefix: "active"}
    # Expiry is not a revocation: no event.
    assert proxy.events("proliferate.llm_proxy.virtual_key.revoked") == []


def test_a_cached_key_stops_working_the_moment_it_expires() -> None:
    grant = KeyGrant(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        session_id=None,
        run_id=None,
        key_prefix="sk-pvk-abcde",
        status="active",
        expires_at=time.time() + 0.5,
        max_budget_micros=None,
        spend_micros=0,
        allowed_models=None,
    )
    assert grant.usable(time.time())
    assert not grant.usable(time.time() + 1)


async def test_a_key_in_use_is_reloaded_ahead_of_its_ttl_and_a_revocation_still_lands_within_it(
    proxy: Proxy,
) -> None:
    assert proxy.running is not None
    now = [0.0]
    cache = KeyCache(proxy.running.runtime.db, ttl_s=2.0, clock=lambda: now[0])
    loads: list[float] = []
    load = cache._load

    async def counted(digest: bytes) -> KeyGrant | None:
        loads.append(now[0])
        return await load(digest)

    cache._load = counted  # type: ignore[method-assign]
    issued = await proxy.issue()
    assert await cache.lookup(issued.key) is not None and loads == [0.0]  # cold: loaded in line
    now[0] = 0.5
    assert await cache.lookup(issued.key) is not None and loads == [0.0]  # fresh
    now[0] = 1.2  # past half the TTL: answered from the cache, reloaded behind it
    assert await cache.lookup(issued.key) is not None and loads == [0.0]
    await eventually(lambda: loads == [0.0, 1.2] and not cache._loading)
    proxy.query("UPDATE virtual_keys SET status = 'revoked', revoked_at = now()")
    now[0] = 2.5  # the first load's TTL is over, but the reload at 1.2 renewed it: no wait
    assert await cache.lookup(issued.key) is not None and loads == [0.0, 1.2]
    await eventually(lambda: loads == [0.0, 1.2, 2.5] and not cache._loading)  # and reloads again
    now[0] = 3.3  # the revocation is seen within the TTL of the data read before it (1.2 + 2)
    assert await cache.lookup(issued.key) is None
