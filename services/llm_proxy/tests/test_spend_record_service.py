"""Spend: exactly-once finalization, GetSpend totals and tenancy, the sweeper (§10.20, 21, 19)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from proliferate.kit.errors import ErrorKind, RemoteError
from proliferate.llm_proxy.model_route.catalog import Usage
from proliferate.llm_proxy.spend_record import service as spend
from proliferate.llm_proxy.spend_record.events import spend_event_id
from proliferate.llm_proxy.spend_record.service import SpendRecordDraft
from proliferate.protos.events.v1 import llm_proxy_pb2
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2 as pb

from .conftest import Proxy, cost_of

SPEND = "proliferate.llm_proxy.spend.recorded"


def _draft(key: dict[str, object], **fields: object) -> SpendRecordDraft:
    values: dict[str, object] = {
        "request_id": uuid.uuid4(),
        "virtual_key_id": key["id"],
        "organization_id": key["organization_id"],
        "session_id": key["session_id"],
        "run_id": key["run_id"],
        "api": "openai_chat",
        "requested_model": "scripted-gpt",
        "routed_model": "openai/scripted-gpt-upstream",
        "stream": False,
        "started_at": datetime.now(UTC),
        "status": "succeeded",
        "usage": Usage(prompt_tokens=100, completion_tokens=10),
        "cost_micros": cost_of(100, 10),
        "ended_at": datetime.now(UTC),
    }
    values.update(fields)
    return SpendRecordDraft(**values)  # type: ignore[arg-type]


def _key(proxy: Proxy, key_id: str) -> dict[str, object]:
    [row] = proxy.query("SELECT * FROM virtual_keys WHERE id = %s", uuid.UUID(key_id))
    return row


async def _finalize(proxy: Proxy, draft: SpendRecordDraft) -> spend.Finalized:
    assert proxy.running is not None
    async with proxy.running.runtime.db.unit_of_work() as session:
        return await spend.finalize(session, draft)


async def test_finalizing_a_request_twice_counts_once_and_emits_once(proxy: Proxy) -> None:
    issued = await proxy.issue()
    draft = _draft(_key(proxy, issued.virtual_key_id))
    first = await _finalize(proxy, draft)
    second = await _finalize(proxy, draft)
    assert first.applied and first.spend_after == draft.cost_micros
    assert not second.applied
    key = _key(proxy, issued.virtual_key_id)
    assert (key["spend_micros"], key["request_count"]) == (draft.cost_micros, 1)
    [event] = proxy.query("SELECT id, payload FROM outbox WHERE subject = %s", SPEND)
    assert event["id"] == spend_event_id(draft.request_id)
    assert llm_proxy_pb2.SpendRecorded.FromString(bytes(event["payload"])).cost_micros == draft.cost_micros
    assert len(proxy.records()) == 1


async def test_an_in_flight_row_is_finalized_once_even_when_it_arrives_late(proxy: Proxy) -> None:
    issued = await proxy.issue()
    draft = _draft(_key(proxy, issued.virtual_key_id))
    await _finalize(proxy, draft)
    assert proxy.running is not None
    async with proxy.running.runtime.db.unit_of_work() as session:
        await spend.record_in_flight(session, draft)  # the in-flight insert lost the race: a no-op
    [record] = proxy.records()
    assert record["status"] == "succeeded"


async def test_get_spend_totals_equal_the_records_and_other_orgs_are_not_found(proxy: Proxy) -> None:
    org, other = uuid.uuid4(), uuid.uuid4()
    session_a, session_b, run = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    key_a = _key(proxy, (await proxy.issue(org, session_a, run_id=str(run))).virtual_key_id)
    key_b = _key(proxy, (await proxy.issue(org, session_b)).virtual_key_id)
    key_other = _key(proxy, (await proxy.issue(other)).virtual_key_id)
    old = datetime.now(UTC) - timedelta(days=2)
    drafts = [
        _draft(key_a, usage=Usage(prompt_tokens=10, completion_tokens=1), cost_micros=12),
        _draft(
            key_a,
            requested_model="scripted-claude",
            usage=Usage(prompt_tokens=5, cache_read_tokens=50),
            cost_micros=10,
        ),
        _draft(key_b, usage=Usage(prompt_tokens=7), cost_micros=7, started_at=old),
        _draft(key_other, cost_micros=1000),
    ]
    for draft in drafts:
        await _finalize(proxy, draft)

    async def get(**fields: object) -> pb.SpendSummary:
        summary: pb.SpendSummary = await proxy.rpc("GetSpend", pb.GetSpendRequest(**fields), caller="billing")  # type: ignore[arg-type]
        return summary

    whole = await get(organization_id=str(org))
    assert (whole.totals.cost_micros, whole.totals.request_count) == (29, 3)
    assert whole.totals.cache_read_tokens == 50
    assert {m.model: m.totals.cost_micros for m in whole.by_model} == {
        "scripted-gpt": 19,
        "scripted-claude": 10,
    }
    assert (await get(organization_id=str(org), session_id=str(session_a))).totals.cost_micros == 22
    assert (await get(organization_id=str(org), run_id=str(run))).totals.cost_micros == 22
    since = Timestamp()
    since.FromDatetime(datetime.now(UTC) - timedelta(days=1))
    assert (await get(organization_id=str(org), since=since)).totals.cost_micros == 22
    assert (await get(organization_id=str(other))).totals.cost_micros == 1000
    with pytest.raises(RemoteError) as missing:
        await get(organization_id=str(other), session_id=str(session_a))
    assert missing.value.kind is ErrorKind.NOT_FOUND and missing.value.code == "session_not_found"
    with pytest.raises(RemoteError) as missing:
        await get(organization_id=str(other), run_id=str(run))
    assert missing.value.code == "run_not_found"
    with pytest.raises(RemoteError) as invalid:
        await get(organization_id="not-a-uuid")
    assert invalid.value.kind is ErrorKind.INVALID_ARGUMENT


async def test_sweeper_marks_abandoned_in_flight_rows_and_bills_the_prompt(proxy: Proxy) -> None:
    issued = await proxy.issue()
    key = _key(proxy, issued.virtual_key_id)
    stale = _draft(
        key,
        status="in_flight",
        usage=Usage(prompt_tokens=400),
        started_at=datetime.now(UTC) - timedelta(minutes=16),
    )
    fresh = _draft(key, status="in_flight", usage=Usage(prompt_tokens=400))
    assert proxy.running is not None
    async with proxy.running.runtime.db.unit_of_work() as session:
        await spend.record_in_flight(session, stale)
        await spend.record_in_flight(session, fresh)
    [job] = [j for j in proxy.running.parts.jobs if j.name == "llm-proxy-abandoned-requests"]
    await job.run()
    by_id = {r["request_id"]: r for r in proxy.records()}
    assert by_id[fresh.request_id]["status"] == "in_flight"
    swept = by_id[stale.request_id]
    assert (swept["status"], swept["usage_estimated"], swept["cost_micros"]) == ("abandoned", True, 400)
    assert _key(proxy, issued.virtual_key_id)["spend_micros"] == 400
    [payload] = proxy.events(SPEND)
    assert llm_proxy_pb2.SpendRecorded.FromString(payload).status == "abandoned"
    await job.run()  # again: nothing more
    assert len(proxy.events(SPEND)) == 1


async def test_retention_deletes_old_records_and_long_ended_keys(proxy: Proxy) -> None:
    from proliferate.llm_proxy.spend_record import sweeper

    issued = await proxy.issue()
    key = _key(proxy, issued.virtual_key_id)
    await _finalize(proxy, _draft(key, started_at=datetime.now(UTC) - timedelta(days=401)))
    await _finalize(proxy, _draft(key))
    gone = await proxy.issue()
    proxy.query(
        "UPDATE virtual_keys SET status = 'revoked', revoked_at = now() - interval '31 days' WHERE id = %s",
        uuid.UUID(gone.virtual_key_id),
    )
    assert proxy.running is not None
    assert await sweeper.purge(proxy.running.runtime.db, 400) == (1, 1)
    assert len(proxy.records()) == 1
