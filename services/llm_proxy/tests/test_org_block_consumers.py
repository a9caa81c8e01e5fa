"""Org blocks from billing events (llm-proxy.md §10.11): 402 within 2 s, order-safe by event time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client as NatsClient
from proliferate.protos.events.v1 import billing_pb2

from .conftest import Proxy, eventually, publish


def _at(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def _status(proxy: Proxy, key: str) -> int:
    return (await proxy.chat(key)).status_code


async def test_paused_org_gets_402_resumed_works_and_a_late_older_resume_does_not_unblock(
    proxy: Proxy, nats_client: NatsClient
) -> None:
    org = uuid.uuid4()
    issued = await proxy.issue(org)
    other_org = await proxy.issue(uuid.uuid4())
    t0 = datetime.now(UTC)

    await publish(
        nats_client,
        "proliferate.billing.org.paused",
        billing_pb2.OrgPaused(organization_id=str(org), reason="credits_exhausted", paused_at=_at(t0)),
    )
    await eventually(lambda: _is(proxy, issued.key, 402), timeout=6)
    refused = await proxy.chat(issued.key)
    assert refused.json()["error"]["code"] == "org_paused"
    assert (await proxy.message(issued.key)).json() == {
        "type": "error",
        "error": {"type": "org_paused", "message": "LLM access is paused for this organization"},
    }
    assert await _status(proxy, other_org.key) == 200

    await publish(
        nats_client,
        "proliferate.billing.org.resumed",
        billing_pb2.OrgResumed(organization_id=str(org), resumed_at=_at(t0 + timedelta(seconds=1))),
    )
    await eventually(lambda: _is(proxy, issued.key, 200), timeout=6)

    # Paused again at t0+3 s; a resume stamped t0+2 s arrives after it: still blocked.
    await publish(
        nats_client,
        "proliferate.billing.org.paused",
        billing_pb2.OrgPaused(
            organization_id=str(org), reason="payment_failed", paused_at=_at(t0 + timedelta(seconds=3))
        ),
    )
    await eventually(lambda: _is(proxy, issued.key, 402), timeout=6)
    await publish(
        nats_client,
        "proliferate.billing.org.resumed",
        billing_pb2.OrgResumed(organization_id=str(org), resumed_at=_at(t0 + timedelta(seconds=2))),
    )
    await eventually(lambda: proxy.query("SELECT count(*) AS n FROM processed_events")[0]["n"] >= 4)
    [row] = proxy.query("SELECT blocked, reason FROM org_blocks")
    assert row == {"blocked": True, "reason": "payment_failed"}
    assert await _status(proxy, issued.key) == 402


async def test_an_older_pause_after_a_resume_does_not_block(proxy: Proxy, nats_client: NatsClient) -> None:
    org = uuid.uuid4()
    issued = await proxy.issue(org)
    t0 = datetime.now(UTC)
    await publish(
        nats_client,
        "proliferate.billing.org.resumed",
        billing_pb2.OrgResumed(organization_id=str(org), resumed_at=_at(t0)),
    )
    await publish(
        nats_client,
        "proliferate.billing.org.paused",
        billing_pb2.OrgPaused(
            organization_id=str(org), reason="suspended", paused_at=_at(t0 - timedelta(seconds=5))
        ),
    )
    await eventually(lambda: proxy.query("SELECT count(*) AS n FROM processed_events")[0]["n"] >= 2)
    assert proxy.query("SELECT blocked FROM org_blocks") == [{"blocked": False}]
    assert await _status(proxy, issued.key) == 200


async def _is(proxy: Proxy, key: str, status: int) -> bool:
    return await _status(proxy, key) == status
