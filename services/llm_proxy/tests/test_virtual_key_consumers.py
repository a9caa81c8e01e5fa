"""Key lifecycle from events: session end, run end, org deletion (llm-proxy.md §10.9, §10.10)."""

from __future__ import annotations

import uuid

import pytest
from nats.aio.client import Client as NatsClient
from proliferate.protos.events.v1 import auth_pb2, automations_pb2, gateway_pb2

from .conftest import Proxy, eventually, publish


def _statuses(proxy: Proxy) -> dict[str, tuple[str, str | None]]:
    rows = proxy.query("SELECT key_prefix, status, revoke_reason FROM virtual_keys")
    return {r["key_prefix"]: (r["status"], r["revoke_reason"]) for r in rows}


async def test_session_paused_revokes_its_key_and_redelivery_changes_nothing(
    proxy: Proxy, nats_client: NatsClient
) -> None:
    org, session = uuid.uuid4(), uuid.uuid4()
    issued = await proxy.issue(org, session)
    other = await proxy.issue(org)
    assert (await proxy.chat(issued.key)).status_code == 200
    event = gateway_pb2.SessionPaused(
        organization_id=str(org), session_id=str(session), reason="idle", has_snapshot=True
    )
    event_id = await publish(nats_client, "proliferate.gateway.session.paused", event)
    await eventually(lambda: _statuses(proxy)[issued.key_prefix] == ("revoked", "session_paused"))
    await eventually(lambda: _refused(proxy, issued.key), timeout=5)
    assert (await proxy.chat(other.key)).status_code == 200

    revoked_at = proxy.query("SELECT revoked_at FROM virtual_keys WHERE key_prefix = %s", issued.key_prefix)
    # The same event again (a redelivery) and a new event for the same session: nothing changes.
    await publish(nats_client, "proliferate.gateway.session.paused", event, event_id=uuid.uuid4())
    await publish(nats_client, "proliferate.gateway.session.paused", event, event_id=event_id)
    await eventually(lambda: proxy.query("SELECT count(*) AS n FROM processed_events")[0]["n"] >= 2)
    assert (
        proxy.query("SELECT revoked_at FROM virtual_keys WHERE key_prefix = %s", issued.key_prefix)
        == revoked_at
    )
    assert len(proxy.events("proliferate.llm_proxy.virtual_key.revoked")) == 1


async def _refused(proxy: Proxy, key: str) -> bool:
    response = await proxy.chat(key)
    return response.status_code == 401


@pytest.mark.parametrize(
    ("subject", "message", "reason"),
    [
        ("proliferate.gateway.session.completed", gateway_pb2.SessionCompleted, "session_completed"),
        ("proliferate.gateway.session.failed", gateway_pb2.SessionFailed, "session_failed"),
    ],
)
async def test_session_end_revokes(
    proxy: Proxy, nats_client: NatsClient, subject: str, message: type, reason: str
) -> None:
    org, session = uuid.uuid4(), uuid.uuid4()
    issued = await proxy.issue(org, session)
    await publish(
        nats_client, subject, message(organization_id=str(org), session_id=str(session), reason="done")
    )
    await eventually(lambda: _statuses(proxy)[issued.key_prefix] == ("revoked", reason))


@pytest.mark.parametrize("status", ["succeeded", "failed", "needs_human", "timed_out", "canceled", "skipped"])
async def test_run_terminal_event_revokes_keys_of_that_run(
    proxy: Proxy, nats_client: NatsClient, status: str
) -> None:
    org, run = uuid.uuid4(), uuid.uuid4()
    session_key = await proxy.issue(org, run_id=str(run))
    service_key = await proxy.issue(org, scope=2, run_id=str(run), purpose="configuration_selector")
    unrelated = await proxy.issue(org, run_id=str(uuid.uuid4()))
    event = automations_pb2.RunChanged(organization_id=str(org), run_id=str(run), status=status)
    await publish(nats_client, f"proliferate.automations.run.{status}", event)
    await eventually(lambda: _statuses(proxy)[session_key.key_prefix] == ("revoked", "run_finished"))
    statuses = _statuses(proxy)
    assert statuses[service_key.key_prefix] == ("revoked", "run_finished")
    assert statuses[unrelated.key_prefix] == ("active", None)


async def test_run_started_revokes_nothing(proxy: Proxy, nats_client: NatsClient) -> None:
    org, run = uuid.uuid4(), uuid.uuid4()
    issued = await proxy.issue(org, run_id=str(run))
    await publish(
        nats_client,
        "proliferate.automations.run.started",
        automations_pb2.RunChanged(organization_id=str(org), run_id=str(run)),
    )
    await publish(
        nats_client,
        "proliferate.automations.run.succeeded",
        automations_pb2.RunChanged(organization_id=str(org), run_id=str(uuid.uuid4())),
    )
    await eventually(lambda: proxy.query("SELECT count(*) AS n FROM processed_events")[0]["n"] >= 1)
    assert _statuses(proxy)[issued.key_prefix] == ("active", None)


async def test_organization_deleted_revokes_every_key_of_the_org(
    proxy: Proxy, nats_client: NatsClient
) -> None:
    org = uuid.uuid4()
    keys = [await proxy.issue(org) for _ in range(3)]
    survivor = await proxy.issue(uuid.uuid4())
    await publish(
        nats_client,
        "proliferate.auth.organization.deleted",
        auth_pb2.OrganizationDeleted(organization_id=str(org)),
    )
    await eventually(lambda: all(_statuses(proxy)[k.key_prefix] == ("revoked", "org_deleted") for k in keys))
    assert _statuses(proxy)[survivor.key_prefix] == ("active", None)
