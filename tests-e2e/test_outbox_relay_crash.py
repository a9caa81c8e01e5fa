"""A2: an event committed is published exactly once, also across relay SIGKILLs."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from google.protobuf import struct_pb2
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from proliferate.kit.bus import ensure_streams
from proliferate.kit.db import Database, outbox_table
from proliferate.kit.outbox import HEADER_MSG_ID, add_event
from proliferate.kit.topology import STREAMS

SUBJECT = "proliferate.auth.organization.updated"
STREAM = "PROLIFERATE_AUTH"
EVENTS = 400


async def stream_count(js: JetStreamContext) -> int:
    return int((await js.stream_info(STREAM)).state.messages)


async def unpublished(db: Database) -> int:
    async with db.unit_of_work() as session:
        query = (
            sa.select(sa.func.count()).select_from(outbox_table).where(outbox_table.c.published_at.is_(None))
        )
        return int((await session.execute(query)).scalar() or 0)


async def test_relay_killed_mid_publish_publishes_each_event_once(
    spawn: Any, databases: Callable[[str], Database], nats_client: NatsClient
) -> None:
    db = databases("auth")
    js = nats_client.jetstream()
    await ensure_streams(js, STREAMS["auth"].specs("auth"))
    ids: list[uuid.UUID] = []
    async with db.unit_of_work() as session:
        for i in range(EVENTS):
            message = struct_pb2.Struct()
            message.update({"n": i})
            ids.append(add_event(session, SUBJECT, message))

    # Committed while no relay runs; then the relay is killed outright three times mid-way.
    kills = 0
    for target in (40, 120, 240):
        relay = spawn("auth", OUTBOX_BATCH_SIZE="5").start("worker")
        deadline = time.monotonic() + 60
        while await stream_count(js) < target and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        relay.kill()  # SIGKILL to the process group: no cleanup, no mark
        kills += 1
    assert kills == 3
    assert await unpublished(db) > 0

    relay = spawn("auth", OUTBOX_BATCH_SIZE="5").start("worker")
    deadline = time.monotonic() + 90
    while await unpublished(db) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    relay.signal(signal.SIGTERM)
    assert relay.wait(timeout=30) == 0

    assert await unpublished(db) == 0
    info = await js.stream_info(STREAM)
    assert info.state.messages == EVENTS
    seen = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(STREAM, seq)
        seen.append((msg.headers or {})[HEADER_MSG_ID])
    assert sorted(seen) == sorted(str(i) for i in ids)
