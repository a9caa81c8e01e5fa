from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from proliferate.kit.bus import JetStreamPublisher, ensure_streams
from proliferate.kit.db import Database, outbox_table
from proliferate.kit.outbox import HEADER_EVENT_TYPE, HEADER_MSG_ID, Publisher, Relay, add_event
from proliferate.kit.topology import STREAMS

from .conftest import probe_event

SUBJECT = "proliferate.auth.organization.updated"
STREAM = "PROLIFERATE_AUTH"


async def stream_ids(js: JetStreamContext, stream: str = STREAM) -> list[str]:
    info = await js.stream_info(stream)
    ids = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        ids.append((msg.headers or {})[HEADER_MSG_ID])
    return ids


@pytest.fixture
async def js(nats_client: NatsClient) -> JetStreamContext:
    context = nats_client.jetstream()
    await ensure_streams(context, STREAMS["auth"].specs("auth"))
    return context


async def add_events(db: Database, count: int) -> list[uuid.UUID]:
    async with db.unit_of_work() as session:
        return [add_event(session, SUBJECT, probe_event(n=i)) for i in range(count)]


class TestAddEvent:
    async def test_rolled_back_event_is_never_published(
        self, databases: Callable[[str], Database], js: JetStreamContext
    ) -> None:
        db = databases("auth")
        with pytest.raises(RuntimeError):
            async with db.unit_of_work() as session:
                add_event(session, SUBJECT, probe_event(state="rolled back"))
                raise RuntimeError("abort the unit of work")
        (committed,) = await add_events(db, 1)
        relay = Relay(db, JetStreamPublisher(js))
        assert await relay.publish_batch() == 1
        assert await relay.publish_batch() == 0
        assert await stream_ids(js) == [str(committed)]

    async def test_published_message_carries_id_type_and_payload(
        self, databases: Callable[[str], Database], js: JetStreamContext
    ) -> None:
        db = databases("auth")
        async with db.unit_of_work() as session:
            event_id = add_event(session, SUBJECT, probe_event(name="acme"))
        await Relay(db, JetStreamPublisher(js)).publish_batch()
        msg = await js.get_last_msg(STREAM, SUBJECT)
        assert msg.headers is not None
        assert msg.headers[HEADER_MSG_ID] == str(event_id)
        assert msg.headers[HEADER_EVENT_TYPE] == "google.protobuf.Struct"
        assert probe_event(name="acme").SerializeToString(deterministic=True) == msg.data

    async def test_same_event_id_twice_is_one_row(self, databases: Callable[[str], Database]) -> None:
        db = databases("auth")
        event_id = uuid.uuid4()
        for _ in range(2):
            async with db.unit_of_work() as session:
                add_event(session, SUBJECT, probe_event(), event_id=event_id)
        async with db.unit_of_work() as session:
            count = (await session.execute(sa.select(sa.func.count()).select_from(outbox_table))).scalar()
        assert count == 1


class FlakyPublisher(Publisher):
    """Fails every publish until `healthy` is set (a NATS outage)."""

    def __init__(self, inner: Publisher) -> None:
        self.inner = inner
        self.healthy = False

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        if not self.healthy:
            raise ConnectionError("nats unavailable")
        await self.inner.publish(subject, payload, headers)


class TestRelay:
    async def test_failed_publish_backs_off_and_retries(
        self, databases: Callable[[str], Database], js: JetStreamContext
    ) -> None:
        db = databases("auth")
        (event_id,) = await add_events(db, 1)
        publisher = FlakyPublisher(JetStreamPublisher(js))
        relay = Relay(db, publisher)
        assert await relay.publish_batch() == 1
        async with db.unit_of_work() as session:
            row = (await session.execute(sa.select(outbox_table).where(outbox_table.c.id == event_id))).one()
        assert row.published_at is None
        assert row.attempts == 1
        assert "nats unavailable" in row.last_error
        assert row.next_attempt_at > row.created_at
        # Not due yet: the backoff keeps it out of the next batch.
        assert await relay.publish_batch() == 0
        async with db.unit_of_work() as session:
            await session.execute(sa.update(outbox_table).values(next_attempt_at=sa.func.now()))
        publisher.healthy = True
        assert await relay.publish_batch() == 1
        assert await stream_ids(js) == [str(event_id)]

    async def test_two_relays_publish_each_row_once(
        self, databases: Callable[[str], Database], platform_db, js: JetStreamContext
    ) -> None:
        db = databases("auth")
        for _ in range(4):
            await add_events(db, 500)
        second_db = Database(platform_db.service_url("auth"), "auth")
        relays = [
            Relay(db, JetStreamPublisher(js), batch_size=25, poll_seconds=0.05),
            Relay(second_db, JetStreamPublisher(js), batch_size=25, poll_seconds=0.05),
        ]
        tasks = [asyncio.create_task(r.run()) for r in relays]
        try:
            for _ in range(600):
                async with db.unit_of_work() as session:
                    left = (
                        await session.execute(
                            sa.select(sa.func.count())
                            .select_from(outbox_table)
                            .where(outbox_table.c.published_at.is_(None))
                        )
                    ).scalar()
                if left == 0:
                    break
                await asyncio.sleep(0.05)
        finally:
            for relay in relays:
                relay.stop()
            await asyncio.gather(*tasks)
            await second_db.dispose()
        assert sum(r.stats.published for r in relays) == 2000
        assert all(r.stats.published > 0 for r in relays)
        ids = await stream_ids(js)
        assert len(ids) == 2000
        assert len(set(ids)) == 2000

    async def test_commit_wakes_a_waiting_relay(
        self, databases: Callable[[str], Database], js: JetStreamContext
    ) -> None:
        db = databases("auth")
        relay = Relay(db, JetStreamPublisher(js), poll_seconds=30.0)  # only NOTIFY can wake it in time
        task = asyncio.create_task(relay.run())
        try:
            await asyncio.sleep(0.5)
            (event_id,) = await add_events(db, 1)
            for _ in range(100):
                if relay.stats.published:
                    break
                await asyncio.sleep(0.05)
        finally:
            relay.stop()
            await task
        assert await stream_ids(js) == [str(event_id)]
