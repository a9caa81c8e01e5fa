"""The transactional outbox and its relay.

`add_event()` writes the event into the service's `outbox` table inside the caller's unit
of work: the event exists if and only if the state change committed. The relay publishes
committed rows to JetStream with the event id as `Nats-Msg-Id` and marks them published.

Several relays may run at once (one per replica): each claims rows with
`FOR UPDATE SKIP LOCKED` and holds the lock until it has marked them, so no row is
published by two relays. A relay killed after publishing but before marking leaves the
rows unpublished; the next relay publishes them again with the same `Nats-Msg-Id`, and
JetStream's duplicate window drops the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
import psycopg.sql
import sqlalchemy as sa
from google.protobuf.message import Message
from proliferate.kit import tracing
from proliferate.kit.db import OUTBOX_PENDING, Database, libpq_url, outbox_channel, outbox_table
from proliferate.kit.ids import uuid7
from proliferate.kit.logs import get_logger, redact
from sqlalchemy.ext.asyncio import AsyncSession

log = get_logger("proliferate.kit.outbox")

HEADER_MSG_ID = "Nats-Msg-Id"
HEADER_EVENT_TYPE = "Proliferate-Event-Type"
HEADER_OCCURRED_AT = "Proliferate-Occurred-At"


def add_event(
    session: AsyncSession,
    subject: str,
    message: Message,
    *,
    event_id: uuid.UUID | None = None,
    headers: Mapping[str, str] | None = None,
) -> uuid.UUID:
    """Stage `message` for publication on `subject` in the caller's unit of work.

    The row is written by the unit of work just before it commits, in the same
    transaction; a rolled-back unit of work publishes nothing. A given `event_id`
    (derived from a request id, say) makes a repeated call a no-op.
    """
    eid = event_id or uuid7()
    row_headers = dict(headers or {})
    row_headers.update(tracing.current_trace_headers())
    session.info.setdefault(OUTBOX_PENDING, []).append(
        {
            "id": eid,
            "subject": subject,
            "event_type": message.DESCRIPTOR.full_name,
            "payload": message.SerializeToString(deterministic=True),
            "headers": row_headers,
        }
    )
    return eid


class Publisher:
    """What the relay needs from the bus (the seam tests can replace)."""

    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str]
    ) -> None:  # pragma: no cover
        raise NotImplementedError


@dataclass
class RelayStats:
    published: int = 0
    failed: int = 0
    batches: int = 0


@dataclass
class Relay:
    """Publishes committed outbox rows of one service schema to JetStream."""

    db: Database
    publisher: Publisher
    batch_size: int = 500
    poll_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    stats: RelayStats = field(default_factory=RelayStats)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen(), name="outbox-listen")
        try:
            while not self._stopping.is_set():
                try:
                    claimed = await self.publish_batch()
                except Exception as exc:
                    log.warning("outbox_relay_error", error=redact(str(exc))[:500])
                    claimed = 0
                    await self._sleep(min(self.poll_seconds * 2, self.max_backoff_seconds))
                if claimed >= self.batch_size:
                    continue
                await self._sleep(self.poll_seconds)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def _listen(self) -> None:
        """LISTEN for commits that staged events, so the relay publishes without polling delay."""
        delay = 0.5
        while not self._stopping.is_set():
            try:
                conn = await psycopg.AsyncConnection.connect(
                    libpq_url(self.db.url), autocommit=True, connect_timeout=5
                )
                async with conn:
                    channel = psycopg.sql.Identifier(outbox_channel(self.db.schema))
                    await conn.execute(psycopg.sql.SQL("LISTEN {}").format(channel))
                    self._wake.set()  # catch up on anything committed while not listening
                    delay = 0.5
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox_listen_error", error=redact(str(exc))[:300], retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def publish_batch(self) -> int:
        """Claim up to `batch_size` due rows, publish them, mark the result. Returns rows claimed."""
        async with self.db.unit_of_work() as session:
            rows = (
                await session.execute(
                    sa.select(
                        outbox_table.c.id,
                        outbox_table.c.subject,
                        outbox_table.c.event_type,
                        outbox_table.c.payload,
                        outbox_table.c.headers,
                        outbox_table.c.attempts,
                        outbox_table.c.created_at,
                    )
                    .where(
                        outbox_table.c.published_at.is_(None), outbox_table.c.next_attempt_at <= sa.func.now()
                    )
                    .order_by(outbox_table.c.created_at, outbox_table.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            results = await asyncio.gather(
                *(self._publish_row(row) for row in rows),
                return_exceptions=True,
            )
            ok = [
                row.id for row, res in zip(rows, results, strict=True) if not isinstance(res, BaseException)
            ]
            if ok:
                await session.execute(
                    sa.update(outbox_table)
                    .where(outbox_table.c.id.in_(ok))
                    .values(published_at=sa.func.now())
                )
            for row, res in zip(rows, results, strict=True):
                if isinstance(res, BaseException):
                    await self._mark_failed(session, row.id, row.attempts, res)
            self.stats.published += len(ok)
            self.stats.failed += len(rows) - len(ok)
            self.stats.batches += 1
            return len(rows)

    async def _publish_row(self, row: Any) -> None:
        headers = {str(k): str(v) for k, v in (row.headers or {}).items()}
        headers[HEADER_MSG_ID] = str(row.id)
        headers[HEADER_EVENT_TYPE] = row.event_type
        headers[HEADER_OCCURRED_AT] = row.created_at.isoformat()
        with tracing.span_from(
            headers,
            f"publish {row.subject}",
            kind=tracing.SpanKind.PRODUCER,
            attributes={"messaging.destination.name": row.subject, "messaging.message.id": str(row.id)},
        ):
            tracing.inject(headers)
            await self.publisher.publish(row.subject, bytes(row.payload), headers)

    async def _mark_failed(
        self, session: AsyncSession, row_id: uuid.UUID, attempts: int, error: BaseException
    ) -> None:
        backoff = min(0.5 * (2**attempts), self.max_backoff_seconds)
        message = redact(f"{type(error).__name__}: {error}")[:1000]
        log.warning(
            "outbox_publish_failed",
            event_id=str(row_id),
            attempts=attempts + 1,
            retry_in_s=backoff,
            error=message,
        )
        await session.execute(
            sa.update(outbox_table)
            .where(outbox_table.c.id == row_id)
            .values(
                attempts=outbox_table.c.attempts + 1,
                last_error=message,
                next_attempt_at=sa.func.now() + timedelta(seconds=backoff),
            )
        )


async def purge_published(session: AsyncSession, older_than: timedelta) -> int:
    result = await session.execute(
        sa.delete(outbox_table).where(
            outbox_table.c.published_at.is_not(None),
            outbox_table.c.published_at < sa.func.now() - older_than,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
