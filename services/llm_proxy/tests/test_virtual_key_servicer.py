"""IssueVirtualKey, RevokeVirtualKeys, GetVirtualKey over real gRPC (llm-proxy.md §10.1-3, 23)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import pytest
from proliferate.kit.errors import ErrorKind, RemoteError
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2 as pb

from .conftest import Proxy, eventually


async def test_issue_returns_the_key_once_and_stores_only_hash_and_prefix(proxy: Proxy) -> None:
    org = uuid.uuid4()
    issued = await proxy.issue(org, max_budget_micros=5_000_000, budget_source=pb.BUDGET_SOURCE_BILLING)
    assert issued.key.startswith("sk-pvk-") and len(issued.key) == 7 + 43
    assert issued.key_prefix == issued.key[:12]
    assert issued.openai_base_url == issued.anthropic_base_url == f"{proxy.url}/v1"
    [row] = proxy.query("SELECT * FROM virtual_keys")
    assert bytes(row["key_hash"]) == hashlib.sha256(issued.key.encode()).digest()
    assert row["key_prefix"] == issued.key[:12]
    assert issued.key not in repr(row)
    info = await proxy.rpc(
        "GetVirtualKey",
        pb.GetVirtualKeyRequest(organization_id=str(org), virtual_key_id=issued.virtual_key_id),
    )
    assert info.status == "active"
    assert info.max_budget_micros == 5_000_000
    assert info.budget_source == pb.BUDGET_SOURCE_BILLING
    assert issued.key not in str(info)
    [event] = proxy.events("proliferate.llm_proxy.virtual_key.issued")
    assert issued.key.encode() not in event


async def test_reissue_leaves_one_active_key_and_the_first_gets_401(proxy: Proxy) -> None:
    org, session = uuid.uuid4(), uuid.uuid4()
    first = await proxy.issue(org, session)
    assert (await proxy.chat(first.key)).status_code == 200
    second = await proxy.issue(org, session)
    statuses = proxy.query("SELECT status, revoke_reason FROM virtual_keys ORDER BY created_at")
    assert statuses == [
        {"status": "revoked", "revoke_reason": "replaced"},
        {"status": "active", "revoke_reason": None},
    ]
    # The first key's cached grant expires within the auth-cache TTL (2 s).
    await eventually(lambda: _status(proxy, first.key, 401), timeout=5)
    assert (await proxy.chat(second.key)).status_code == 200
    assert len(proxy.events("proliferate.llm_proxy.virtual_key.revoked")) == 1


async def _status(proxy: Proxy, key: str, status: int) -> bool:
    return (await proxy.chat(key)).status_code == status


async def test_twenty_concurrent_issues_leave_one_active_and_nineteen_replaced(proxy: Proxy) -> None:
    org, session = uuid.uuid4(), uuid.uuid4()
    issued = await asyncio.gather(*(proxy.issue(org, session) for _ in range(20)))
    assert len({i.key for i in issued}) == 20
    rows = proxy.query(
        "SELECT status, revoke_reason, count(*) AS n FROM virtual_keys GROUP BY 1, 2 ORDER BY 1"
    )
    assert rows == [
        {"status": "active", "revoke_reason": None, "n": 1},
        {"status": "revoked", "revoke_reason": "replaced", "n": 19},
    ]


async def test_caller_outside_the_allow_list_is_denied(proxy: Proxy) -> None:
    request = pb.IssueVirtualKeyRequest(
        organization_id=str(uuid.uuid4()), scope=pb.KEY_SCOPE_SESSION, session_id=str(uuid.uuid4())
    )
    with pytest.raises(RemoteError) as denied:
        await proxy.rpc("IssueVirtualKey", request, caller="sandbox")
    assert denied.value.kind is ErrorKind.PERMISSION_DENIED
    with pytest.raises(RemoteError) as denied:
        await proxy.rpc("GetSpend", pb.GetSpendRequest(organization_id=str(uuid.uuid4())), caller="actions")
    assert denied.value.kind is ErrorKind.PERMISSION_DENIED
    # billing may read, not issue.
    await proxy.rpc("ListModels", pb.ListModelsRequest(), caller="billing")
    with pytest.raises(RemoteError) as denied:
        await proxy.rpc("IssueVirtualKey", request, caller="billing")
    assert denied.value.kind is ErrorKind.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"scope": pb.KEY_SCOPE_SESSION}, "session_id"),
        ({"scope": pb.KEY_SCOPE_SESSION, "session_id": "s", "ttl_seconds": 59}, "session_id"),
        ({"scope": pb.KEY_SCOPE_SESSION, "session_id": "uuid", "ttl_seconds": 59}, "ttl_seconds"),
        ({"scope": pb.KEY_SCOPE_SESSION, "session_id": "uuid", "ttl_seconds": 7 * 86400 + 1}, "ttl_seconds"),
        ({"scope": pb.KEY_SCOPE_SERVICE, "session_id": "uuid"}, "session_id"),
        ({"scope": pb.KEY_SCOPE_UNSPECIFIED}, "scope"),
        ({"scope": pb.KEY_SCOPE_SERVICE, "allowed_models": ["no-such-model"]}, "allowed_models"),
        ({"scope": pb.KEY_SCOPE_SERVICE, "purpose": "x" * 65}, "purpose"),
    ],
)
async def test_invalid_issue_requests(proxy: Proxy, fields: dict[str, object], field: str) -> None:
    values = {k: (str(uuid.uuid4()) if v == "uuid" else v) for k, v in fields.items()}
    request = pb.IssueVirtualKeyRequest(organization_id=str(uuid.uuid4()), **values)  # type: ignore[arg-type]
    with pytest.raises(RemoteError) as invalid:
        await proxy.rpc("IssueVirtualKey", request)
    assert invalid.value.kind is ErrorKind.INVALID_ARGUMENT
    assert invalid.value.details.get("field") == field
    assert proxy.query("SELECT count(*) AS n FROM virtual_keys") == [{"n": 0}]


async def test_ttl_bounds_and_service_default(proxy: Proxy) -> None:
    org = uuid.uuid4()
    await proxy.issue(org, ttl_seconds=60)
    await proxy.issue(org, ttl_seconds=7 * 86400)
    service_key = await proxy.issue(org, scope=pb.KEY_SCOPE_SERVICE, purpose="configuration_selector")
    [row] = proxy.query(
        "SELECT extract(epoch FROM expires_at - created_at) AS ttl FROM virtual_keys WHERE id = %s",
        uuid.UUID(service_key.virtual_key_id),
    )
    assert 14 * 60 < float(row["ttl"]) <= 15 * 60 + 5


async def test_another_orgs_key_is_not_found(proxy: Proxy) -> None:
    issued = await proxy.issue(uuid.uuid4())
    with pytest.raises(RemoteError) as missing:
        await proxy.rpc(
            "GetVirtualKey",
            pb.GetVirtualKeyRequest(organization_id=str(uuid.uuid4()), virtual_key_id=issued.virtual_key_id),
        )
    assert missing.value.kind is ErrorKind.NOT_FOUND
    assert missing.value.code == "virtual_key_not_found"


async def test_revoke_by_session_run_and_key_is_idempotent(proxy: Proxy) -> None:
    org, run = uuid.uuid4(), uuid.uuid4()
    by_session = await proxy.issue(org)
    by_run = await proxy.issue(org, run_id=str(run))
    by_key = await proxy.issue(org)
    other_org = await proxy.issue(uuid.uuid4(), run_id=str(run))
    [session_id] = proxy.query(
        "SELECT session_id FROM virtual_keys WHERE id = %s", uuid.UUID(by_session.virtual_key_id)
    )

    async def revoke(**target: str) -> int:
        request = pb.RevokeVirtualKeysRequest(
            organization_id=str(org), reason=pb.REVOKE_REASON_EXPLICIT, **target
        )
        return int((await proxy.rpc("RevokeVirtualKeys", request)).revoked_count)

    assert await revoke(session_id=str(session_id["session_id"])) == 1
    assert await revoke(run_id=str(run)) == 1
    assert await revoke(virtual_key_id=by_key.virtual_key_id) == 1
    assert await revoke(virtual_key_id=by_key.virtual_key_id) == 0
    statuses = {
        r["key_prefix"]: r["status"] for r in proxy.query("SELECT key_prefix, status FROM virtual_keys")
    }
    assert statuses[other_org.key_prefix] == "active"  # same run id, another org: untouched
    assert statuses[by_run.key_prefix] == statuses[by_key.key_prefix] == "revoked"
    with pytest.raises(RemoteError) as invalid:
        await proxy.rpc("RevokeVirtualKeys", pb.RevokeVirtualKeysRequest(organization_id=str(org)))
    assert invalid.value.kind is ErrorKind.INVALID_ARGUMENT


async def test_list_models_names_aliases_and_availability(proxy: Proxy) -> None:
    reply = await proxy.rpc("ListModels", pb.ListModelsRequest())
    models = {m.name: m for m in reply.models}
    assert list(models["scripted-gpt"].aliases) == ["gpt-scripted"]
    assert models["scripted-gpt"].available
    assert not models["unconfigured"].available
