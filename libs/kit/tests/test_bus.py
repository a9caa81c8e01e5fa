from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from google.protobuf import struct_pb2
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from proliferate.kit.bus import (
    Consumer,
    ConsumerSpec,
    EphemeralSubscription,
    Event,
    JetStreamPublisher,
    Outcome,
    ensure_streams,
    on,
    on_each,
)
from proliferate.kit.db import Database
from proliferate.kit.outbox import Relay, add_event
from proliferate.kit.topology import DLQ_STREAM, STREAMS, StreamSpec
from proliferate.protos.events.v1 import runtime_pb2
from sqlalchemy.ext.asyncio import AsyncSession

from .conftest import probe_event

SUBJECT = "proliferate.auth.organization.updated"
STREAM = "PROLIFERATE_AUTH"


@pytest.fixture
async def js(nats_client: NatsClient) -> JetStreamContext:
    context = nats_client.jetstream()
    await ensure_streams(context, (*STREAMS["auth"].specs("auth"), DLQ_STREAM))
    return context


async def publish(db: Database, js: JetStreamContext, **fields: object) -> uuid.UUID:
    async with db.unit_of_work() as session:
        event_id = add_event(session, SUBJECT, probe_event(**fields))
    await Relay(db, JetStreamPublisher(js)).publish_batch()
    return event_id


async def count_effects(db: Database, table: str) -> int:
    async with db.unit_of_work() as session:
        return int((await session.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar() or 0)


def recording_handler(
    table: str, fail_first: int = 0, always_fail: bool = False
) -> tuple[Callable[[AsyncSession, Event[struct_pb2.Struct]], Awaitable[None]], list[float]]:
    deliveries: list[float] = []

    async def handle(session: AsyncSession, event: Event[struct_pb2.Struct]) -> None:
        deliveries.append(time.monotonic())
        await session.execute(
            sa.text(f"INSERT INTO {table} (event_id, note) VALUES (:id, :note)"),
            {"id": event.id, "note": event.payload["note"] if "note" in event.payload else ""},  # noqa: SIM401
        )
        if always_fail or len(deliveries) <= fail_first:
            raise ValueError(f"handler failed on delivery {event.delivery}")

    return handle, deliveries


async def run_until(consumer: Consumer, done: Callable[[], bool], timeout: float = 20.0) -> None:
    task = asyncio.create_task(consumer.run())
    try:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        consumer.stop()
        await task


class TestStreams:
    async def test_ensure_streams_is_idempotent_and_updates_config(self, nats_client: NatsClient) -> None:
        js = nats_client.jetstream()
        spec = StreamSpec(name="PROLIFERATE_KITTEST", subjects=("proliferate.kittest.>",), max_age_days=1.0)
        await ensure_streams(js, [spec])
        await ensure_streams(js, [spec])
        wider = StreamSpec(name="PROLIFERATE_KITTEST", subjects=("proliferate.kittest.>",), max_age_days=2.0)
        await ensure_streams(js, [wider])
        info = await js.stream_info("PROLIFERATE_KITTEST")
        assert info.config.max_age == pytest.approx(2 * 86400)

    async def test_every_service_stream_can_be_declared_together(self, nats_client: NatsClient) -> None:
        from proliferate.kit.topology import all_stream_specs

        js = nats_client.jetstream()
        await ensure_streams(js, all_stream_specs())
        names = {info.config.name for info in await js.streams_info()}
        assert {s.name for s in all_stream_specs()} <= names


class TestConsumer:
    async def test_handler_runs_once_and_the_message_is_acked(
        self, databases: Callable[[str], Database], js: JetStreamContext, effects: str
    ) -> None:
        db = databases("auth")
        handle, deliveries = recording_handler(effects)
        spec = ConsumerSpec("auth-kittest", STREAM, (on(SUBJECT, struct_pb2.Struct)(handle),))
        consumer = Consumer("auth", spec, db, js)
        event_id = await publish(db, js, note="hello")
        await run_until(consumer, lambda: consumer.stats.handled == 1)
        assert len(deliveries) == 1
        assert await count_effects(db, effects) == 1
        info = await js.consumer_info(STREAM, "auth-kittest")
        assert info.num_ack_pending == 0
        assert info.num_pending == 0
        async with db.unit_of_work() as session:
            processed = (
                (await session.execute(sa.text("SELECT event_id FROM processed_events"))).scalars().all()
            )
        assert processed == [event_id]

    async def test_failing_handler_is_redelivered_with_backoff(
        self, databases: Callable[[str], Database], js: JetStreamContext, effects: str
    ) -> None:
        db = databases("auth")
        handle, deliveries = recording_handler(effects, fail_first=2)
        spec = ConsumerSpec(
            "auth-kittest-retry",
            STREAM,
            (on(SUBJECT, struct_pb2.Struct)(handle),),
            backoff_seconds=(0.4, 0.8),
        )
        consumer = Consumer("auth", spec, db, js)
        await publish(db, js, note="retry me")
        await run_until(consumer, lambda: consumer.stats.handled == 1)
        assert len(deliveries) == 3
        assert consumer.stats.retried == 2
        gaps = [b - a for a, b in itertools.pairwise(deliveries)]
        assert gaps[0] >= 0.35
        assert gaps[1] >= 0.75
        # The failed deliveries rolled back their writes: one effect, from the success.
        assert await count_effects(db, effects) == 1

    async def test_exhausted_message_lands_on_the_dead_letter_subject(
        self, databases: Callable[[str], Database], js: JetStreamContext, effects: str
    ) -> None:
        db = databases("auth")
        handle, deliveries = recording_handler(effects, always_fail=True)
        spec = ConsumerSpec(
            "auth-kittest-dlq",
            STREAM,
            (on(SUBJECT, struct_pb2.Struct)(handle),),
            max_deliveries=3,
            backoff_seconds=(0.1,),
        )
        consumer = Consumer("auth", spec, db, js)
        event_id = await publish(db, js, note="poison")
        await run_until(consumer, lambda: consumer.stats.dead_lettered == 1)
        assert len(deliveries) == 3
        # The dead letter went through the outbox: publish it and read it back.
        await Relay(db, JetStreamPublisher(js)).publish_batch()
        msg = await js.get_last_msg(DLQ_STREAM.name, "proliferate.dlq.auth")
        letter = runtime_pb2.DeadLetter.FromString(msg.data)
        assert letter.event_id == str(event_id)
        assert letter.subject == SUBJECT
        assert letter.consumer == "auth-kittest-dlq"
        assert letter.deliveries == 3
        assert "ValueError: handler failed on delivery 3" in letter.error
        assert struct_pb2.Struct.FromString(letter.payload)["note"] == "poison"
        assert await count_effects(db, effects) == 0
        info = await js.consumer_info(STREAM, "auth-kittest-dlq")
        assert info.num_ack_pending == 0

    async def test_redelivery_after_a_lost_ack_changes_nothing(
        self, databases: Callable[[str], Database], js: JetStreamContext, effects: str
    ) -> None:
        db = databases("auth")
        handle, deliveries = recording_handler(effects)
        spec = ConsumerSpec(
            "auth-kittest-lostack", STREAM, (on(SUBJECT, struct_pb2.Struct)(handle),), ack_wait_seconds=1.0
        )
        consumer = Consumer("auth", spec, db, js)
        await consumer.ensure()
        await publish(db, js, note="once")
        sub = await js.pull_subscribe_bind(durable="auth-kittest-lostack", stream=STREAM)
        (msg,) = await sub.fetch(1, timeout=5)
        settlement = await consumer.handle_message(msg)  # the work commits ...
        assert settlement.outcome is Outcome.ACK
        await sub.unsubscribe()  # ... and the ack is never sent
        await run_until(consumer, lambda: consumer.stats.skipped_duplicates == 1)
        assert len(deliveries) == 1
        assert await count_effects(db, effects) == 1
        info = await js.consumer_info(STREAM, "auth-kittest-lostack")
        assert info.num_ack_pending == 0

    async def test_undecodable_payload_is_dead_lettered_at_once(
        self, databases: Callable[[str], Database], js: JetStreamContext, effects: str
    ) -> None:
        db = databases("auth")
        handle, deliveries = recording_handler(effects)
        spec = ConsumerSpec("auth-kittest-garbage", STREAM, (on(SUBJECT, struct_pb2.Struct)(handle),))
        consumer = Consumer("auth", spec, db, js)
        await js.publish(SUBJECT, b"\xff\xfe not protobuf", headers={"Nats-Msg-Id": str(uuid.uuid4())})
        await run_until(consumer, lambda: consumer.stats.dead_lettered == 1)
        assert deliveries == []

    async def test_a_failure_inside_a_batch_neither_loses_nor_doubles_the_others(
        self, databases: Callable[[str], Database], js: JetStreamContext, effects: str
    ) -> None:
        db = databases("auth")
        calls: list[str] = []

        async def handle(session: AsyncSession, event: Event[struct_pb2.Struct]) -> None:
            note = event.payload["note"]
            calls.append(note)
            insert = sa.text(f"INSERT INTO {effects} (event_id, note) VALUES (:id, :note)")
            await session.execute(insert, {"id": event.id, "note": note})
            if note == "bad" and calls.count("bad") == 1:
                raise RuntimeError("the first run of the bad one fails")

        handlers = (on(SUBJECT, struct_pb2.Struct)(handle),)
        spec = ConsumerSpec("auth-kittest-batch", STREAM, handlers, batch=16, backoff_seconds=(0.2,))
        consumer = Consumer("auth", spec, db, js)
        notes = [f"ok-{i}" for i in range(9)] + ["bad"]
        async with db.unit_of_work() as session:
            for note in notes:
                add_event(session, SUBJECT, probe_event(note=note))
        await Relay(db, JetStreamPublisher(js)).publish_batch()
        await run_until(consumer, lambda: consumer.stats.handled == len(notes))
        async with db.unit_of_work() as session:
            rows = (await session.execute(sa.text(f"SELECT note FROM {effects}"))).scalars().all()
        # The batch rolled back as a whole and each message ran again on its own.
        assert sorted(rows) == sorted(notes)
        assert calls.count("bad") == 2
        assert len(calls) > len(notes)


class TestEphemeralSubscription:
    async def test_every_replica_receives_each_new_event_in_order(
        self, js: JetStreamContext, databases: Any
    ) -> None:
        db = databases("auth")
        await publish(db, js, note="before")  # published before subscribing: not delivered
        seen: dict[str, list[str]] = {"one": [], "two": []}

        def record(replica: str) -> Callable[[Event[struct_pb2.Struct]], Awaitable[None]]:
            async def handle(event: Event[struct_pb2.Struct]) -> None:
                seen[replica].append(event.payload["note"])

            return handle

        subs = [
            EphemeralSubscription(
                js, STREAM, "proliferate.auth.>", (on_each(SUBJECT, struct_pb2.Struct)(record(name)),)
            )
            for name in seen
        ]
        for sub in subs:
            await sub.start()
        try:
            ids = [await publish(db, js, note=f"n{i}") for i in range(5)]
            await wait_until(lambda: all(len(v) == 5 for v in seen.values()))
            assert seen == {"one": [f"n{i}" for i in range(5)], "two": [f"n{i}" for i in range(5)]}
            assert len(set(ids)) == 5
        finally:
            for sub in subs:
                await sub.stop()

    async def test_a_failing_handler_does_not_stop_the_subscription_and_other_subjects_are_ignored(
        self, js: JetStreamContext, databases: Any
    ) -> None:
        db = databases("auth")
        seen: list[str] = []

        async def handle(event: Event[struct_pb2.Struct]) -> None:
            if event.payload["note"] == "boom":
                raise ValueError("handler failed")
            seen.append(event.payload["note"])

        sub = EphemeralSubscription(
            js, STREAM, "proliferate.auth.>", (on_each(SUBJECT, struct_pb2.Struct)(handle),)
        )
        await sub.start()
        try:
            async with db.unit_of_work() as session:
                add_event(session, "proliferate.auth.member.added", probe_event(note="other subject"))
            await publish(db, js, note="boom")
            await publish(db, js, note="after")
            await wait_until(lambda: seen == ["after"])
            assert sub.received == 1
        finally:
            await sub.stop()


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
