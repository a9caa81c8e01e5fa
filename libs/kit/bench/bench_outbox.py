"""Outbox relay throughput (commit → JetStream ack) with one and two relays, and consumer
latency (commit → handler done) at a steady 1,000 events/s.

Targets (issue #2): ≥ 5,000 events/s relayed; consumer p99 ≤ 50 ms at 1,000 events/s.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import uuid

import nats
import sqlalchemy as sa
from google.protobuf import struct_pb2
from proliferate.devkit.bench import BenchEnv, summarize_ms
from proliferate.kit.bus import Consumer, ConsumerSpec, Event, JetStreamPublisher, ensure_streams, on
from proliferate.kit.db import Database, outbox_table
from proliferate.kit.outbox import Relay, add_event
from proliferate.kit.topology import STREAMS
from sqlalchemy.ext.asyncio import AsyncSession

SUBJECT = "proliferate.auth.organization.updated"
THROUGHPUT_EVENTS = 20_000


def payload(i: int) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update({"n": i, "organization_id": str(uuid.uuid4())})
    return message


async def fill(db: Database, count: int, per_transaction: int = 1000) -> None:
    for start in range(0, count, per_transaction):
        async with db.unit_of_work() as session:
            for i in range(start, min(start + per_transaction, count)):
                add_event(session, SUBJECT, payload(i))


async def unpublished(db: Database) -> int:
    async with db.unit_of_work() as session:
        query = (
            sa.select(sa.func.count()).select_from(outbox_table).where(outbox_table.c.published_at.is_(None))
        )
        return int((await session.execute(query)).scalar() or 0)


async def reset(env: BenchEnv, nc: nats.NATS) -> None:
    js = nc.jetstream()
    for info in await js.streams_info():
        if info.config.name:
            await js.delete_stream(info.config.name)
    await ensure_streams(js, STREAMS["auth"].specs("auth"))
    db = env.database("auth", pool_size=2)
    async with db.unit_of_work() as session:
        await session.execute(sa.text("TRUNCATE outbox, processed_events"))
    await db.dispose()


async def relay_throughput(env: BenchEnv, nc: nats.NATS, relays: int) -> float:
    await reset(env, nc)
    filler = env.database("auth")
    await fill(filler, THROUGHPUT_EVENTS)
    dbs = [env.database("auth") for _ in range(relays)]
    workers = [Relay(db, JetStreamPublisher(nc.jetstream()), batch_size=500, poll_seconds=0.05) for db in dbs]
    started = time.perf_counter()
    tasks = [asyncio.create_task(w.run()) for w in workers]
    while await unpublished(filler):
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    for w in workers:
        w.stop()
    await asyncio.gather(*tasks)
    published = sum(w.stats.published for w in workers)
    for db in [*dbs, filler]:
        await db.dispose()
    assert published == THROUGHPUT_EVENTS, published
    return THROUGHPUT_EVENTS / elapsed


def _produce_process(url: str, rate: int, seconds: float) -> None:
    """The producing service, in its own process as in production: commits `rate` events/s."""

    async def produce_all() -> None:
        db = Database(url, "auth", pool_size=10)
        producers = 8
        interval = producers / rate

        async def produce(offset: int) -> None:
            next_at = time.perf_counter() + offset * interval / producers
            end = time.perf_counter() + seconds
            while next_at < end:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                message = struct_pb2.Struct()
                async with db.unit_of_work() as session:
                    message.update({"committed_at": time.time()})  # just before the commit
                    add_event(session, SUBJECT, message)
                next_at += interval

        await asyncio.gather(*(produce(i) for i in range(producers)))
        await db.dispose()

    asyncio.run(produce_all())


async def consumer_latency(
    env: BenchEnv, nc: nats.NATS, rate: int = 1000, seconds: float = 10.0
) -> list[float]:
    """Relay and consumer run here (one service process); a second process produces."""
    await reset(env, nc)
    db = env.database("auth", pool_size=20)
    latencies: list[float] = []

    async def handle(session: AsyncSession, event: Event[struct_pb2.Struct]) -> None:
        latencies.append(time.time() - event.payload["committed_at"])

    relay = Relay(db, JetStreamPublisher(nc.jetstream()), batch_size=500, poll_seconds=1.0)
    spec = ConsumerSpec(
        "auth-bench", "PROLIFERATE_AUTH", (on(SUBJECT, struct_pb2.Struct)(handle),), concurrency=16
    )
    consumer = Consumer("auth", spec, db, nc.jetstream())
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
    await asyncio.sleep(0.5)
    producer = multiprocessing.get_context("fork").Process(
        target=_produce_process, args=(env.platform_db.service_url("auth"), rate, seconds)
    )
    producer.start()
    await asyncio.to_thread(producer.join)
    expected = await _outbox_count(db)
    deadline = time.perf_counter() + 30
    while len(latencies) < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    consumer.stop()
    relay.stop()
    await asyncio.gather(*tasks)
    await db.dispose()
    rate_seen = expected / seconds
    print(f"  produced {expected} events in {seconds:.0f}s ({rate_seen:.0f}/s), handled {len(latencies)}")
    return latencies


async def _outbox_count(db: Database) -> int:
    async with db.unit_of_work() as session:
        return int(
            (await session.execute(sa.select(sa.func.count()).select_from(outbox_table))).scalar() or 0
        )


async def main(env: BenchEnv) -> None:
    nc = await nats.connect(env.nats_url)
    try:
        cores = os.cpu_count()
        one = await relay_throughput(env, nc, 1)
        print(f"relay throughput, 1 relay : {one:,.0f} events/s  (target ≥ 5,000; {cores} cores)")
        two = await relay_throughput(env, nc, 2)
        print(f"relay throughput, 2 relays: {two:,.0f} events/s  (ratio to 1 relay: {two / one:.2f})")
        latencies = await consumer_latency(env, nc)
        print("consumer latency commit → handler done at 1,000 events/s:")
        print(f"  {summarize_ms(latencies)}  (target p99 ≤ 50 ms; {cores} cores)")
    finally:
        await nc.close()
