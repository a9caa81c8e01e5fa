"""The NATS JetStream bus: connection, streams, the relay's publisher, durable consumers,
and ephemeral per-replica subscriptions.

Consumers are durable pull consumers with explicit ack. A handler runs inside a unit of
work together with the insert of its `processed_events` row, so a redelivered event whose
first delivery committed changes nothing. A handler that raises is redelivered with
backoff; after `max_deliveries` the message goes to `proliferate.dlq.<service>` (through
the outbox, so it is not lost either) carrying the error, and is terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import nats
import nats.errors
import nats.js.errors
from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, DiscardPolicy, RetentionPolicy, StreamConfig
from proliferate.kit import tracing
from proliferate.kit.db import Database, processed_events_table
from proliferate.kit.ids import derived_id
from proliferate.kit.logs import get_logger, redact
from proliferate.kit.outbox import HEADER_EVENT_TYPE, HEADER_MSG_ID, HEADER_OCCURRED_AT, Publisher, add_event
from proliferate.kit.topology import DLQ_STREAM, Retention, StreamSpec, dlq_subject
from proliferate.protos.events.v1 import runtime_pb2
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

log = get_logger("proliferate.kit.bus")

M = TypeVar("M", bound=Message)

_DLQ_NAMESPACE = uuid.UUID("5b0d3c52-4d1c-4a64-9d8e-9c1f0c3f7a10")


async def connect(url: str, *, name: str, max_delay: float = 30.0, attempts: int | None = None) -> NatsClient:
    """Connect to NATS, retrying with backoff and saying so in the log.

    nats-py would retry a first connection quietly for minutes, so reachability is probed
    first (a server that greets with INFO); the connection kept reconnects on its own.
    """
    servers = url.split(",")
    delay = 0.5
    attempt = 0
    while True:
        attempt += 1
        try:
            await _probe(servers)
            nc = await nats.connect(
                servers=servers,
                name=name,
                connect_timeout=5,
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                allow_reconnect=True,
                error_cb=_log_nats_error,
                disconnected_cb=_log_nats_disconnect,
            )
            if attempt > 1:
                log.info("nats_reachable", attempt=attempt)
            return nc
        except Exception as exc:
            if attempts is not None and attempt >= attempts:
                raise
            log.warning("nats_unreachable", attempt=attempt, retry_in_s=delay, error=redact(str(exc))[:300])
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)


async def _probe(servers: list[str]) -> None:
    errors: list[str] = []
    for server in servers:
        parts = urlsplit(server if "://" in server else f"nats://{server}")
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 4222), timeout=5
            )
            try:
                greeting = await asyncio.wait_for(reader.read(4), timeout=5)
            finally:
                writer.close()
            if greeting == b"INFO":
                return
            errors.append(f"{parts.hostname}:{parts.port} is not a NATS server")
        except (OSError, TimeoutError) as exc:
            errors.append(f"{parts.hostname}:{parts.port}: {exc}")
    raise ConnectionError("; ".join(errors))


async def _log_nats_error(exc: Exception) -> None:
    log.warning("nats_error", error=redact(str(exc))[:300])


async def _log_nats_disconnect() -> None:
    log.warning("nats_disconnected")


def _stream_config(spec: StreamSpec) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        description=spec.description or None,
        retention=RetentionPolicy.WORK_QUEUE if spec.retention is Retention.WORK else RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_age=spec.max_age_days * 86400,
        duplicate_window=spec.duplicate_window_seconds,
    )


async def ensure_streams(js: JetStreamContext, specs: Sequence[StreamSpec]) -> None:
    """Create the streams, or bring an existing one to the declared config. Idempotent."""
    for spec in specs:
        config = _stream_config(spec)
        try:
            await js.stream_info(spec.name)
        except nats.js.errors.NotFoundError:
            try:
                await js.add_stream(config)
                continue
            except nats.js.errors.BadRequestError:
                pass  # a replica created it meanwhile
        await js.update_stream(config)


class JetStreamPublisher(Publisher):
    def __init__(self, js: JetStreamContext, timeout: float = 5.0) -> None:
        self.js = js
        self.timeout = timeout

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        await self.js.publish(subject, payload, timeout=self.timeout, headers=headers)


@dataclass(frozen=True)
class Event(Generic[M]):
    """One delivered event, decoded."""

    id: uuid.UUID
    subject: str
    payload: M
    occurred_at: datetime | None
    delivery: int
    headers: dict[str, str]


HandlerFn = Callable[[AsyncSession, Event[Any]], Awaitable[None]]


@dataclass(frozen=True)
class Handler:
    subject: str
    message_type: type[Message]
    fn: HandlerFn


def on(
    subject: str, message_type: type[M]
) -> Callable[[Callable[[AsyncSession, Event[M]], Awaitable[None]]], Handler]:
    """Declare the handler of one subject: `HANDLERS = [on("proliferate.x.y", Y)(handle_y)]`."""

    def wrap(fn: Callable[[AsyncSession, Event[M]], Awaitable[None]]) -> Handler:
        return Handler(subject=subject, message_type=message_type, fn=fn)

    return wrap


@dataclass(frozen=True)
class ConsumerSpec:
    durable: str
    stream: str
    handlers: tuple[Handler, ...]
    max_deliveries: int = 10
    backoff_seconds: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 300.0)
    ack_wait_seconds: float = 60.0
    # Batches handled at once (each in its own transaction).
    concurrency: int = 4
    # Messages whose handlers share one transaction. A failure reruns that batch one
    # message per transaction, so set 1 for handlers with effects outside the database.
    batch: int = 32

    def backoff_for(self, delivery: int) -> float:
        index = min(max(delivery - 1, 0), len(self.backoff_seconds) - 1)
        return self.backoff_seconds[index]


class Outcome(StrEnum):
    ACK = "ack"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True)
class Settlement:
    outcome: Outcome
    delay: float = 0.0


@dataclass
class ConsumerStats:
    handled: int = 0
    skipped_duplicates: int = 0
    retried: int = 0
    dead_lettered: int = 0


@dataclass
class Consumer:
    """Runs one durable pull consumer of one service."""

    service: str
    spec: ConsumerSpec
    db: Database
    js: JetStreamContext
    stats: ConsumerStats = field(default_factory=ConsumerStats)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._handlers = {h.subject: h for h in self.spec.handlers}

    @property
    def name(self) -> str:
        return f"{self.service}:{self.spec.durable}"

    async def ensure(self) -> None:
        config = ConsumerConfig(
            durable_name=self.spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            # Redelivery is counted and bounded here, not by the server, so a handler that
            # crashes the process still ends on the dead-letter subject.
            max_deliver=-1,
            ack_wait=self.spec.ack_wait_seconds,
            filter_subjects=sorted(self._handlers),
            max_ack_pending=max(self.spec.concurrency * 4, 64),
        )
        try:
            await self.js.add_consumer(self.spec.stream, config)
        except nats.js.errors.BadRequestError:
            await self.js.add_consumer(self.spec.stream, config)  # exists: update in place

    async def run(self) -> None:
        await self.ensure()
        sub = await self.js.pull_subscribe_bind(durable=self.spec.durable, stream=self.spec.stream)
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping.is_set():
                if len(in_flight) >= self.spec.concurrency:
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    msgs = await sub.fetch(batch=self.spec.batch, timeout=1.0)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                except nats.errors.ConnectionClosedError:
                    break
                except Exception as exc:
                    log.warning("consumer_fetch_error", consumer=self.name, error=redact(str(exc))[:300])
                    await asyncio.sleep(1.0)
                    continue
                task = asyncio.create_task(self._process(msgs))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
        finally:
            if in_flight:
                await asyncio.wait(in_flight, timeout=30)
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def stop(self) -> None:
        self._stopping.set()

    async def _process(self, msgs: list[Msg]) -> None:
        for msg, settlement in await self.handle_batch(msgs):
            await self.settle(msg, settlement)

    async def handle_batch(self, msgs: list[Msg]) -> list[tuple[Msg, Settlement]]:
        """Handle `msgs` in one transaction; on any failure, one message per transaction."""
        if len(msgs) == 1:
            return [(msgs[0], await self.handle_message(msgs[0]))]
        events: list[tuple[Msg, Event[Any]]] = []
        settled: list[tuple[Msg, Settlement]] = []
        for msg in msgs:
            headers = dict(msg.headers or {})
            delivery = msg.metadata.num_delivered
            event_id = _event_id(msg, headers)
            try:
                if delivery > self.spec.max_deliveries:
                    raise ValueError("over the delivery limit")
                events.append((msg, self._decode(msg, headers, event_id, delivery)))
            except (DecodeError, KeyError, ValueError):
                settled.append((msg, await self.handle_message(msg)))  # dead-letters it
        if not events:
            return settled
        try:
            handled = await self._run_handlers([event for _, event in events])
        except Exception:
            return settled + [(msg, await self.handle_message(msg)) for msg, _ in events]
        self.stats.handled += handled
        self.stats.skipped_duplicates += len(events) - handled
        return settled + [(msg, Settlement(Outcome.ACK)) for msg, _ in events]

    async def _run_handlers(self, events: list[Event[Any]]) -> int:
        """Record the events as processed and run the handlers of the new ones, in one
        transaction. Returns how many ran (the rest were processed before)."""
        async with self.db.unit_of_work() as session:
            rows = [{"consumer": self.spec.durable, "event_id": e.id, "subject": e.subject} for e in events]
            inserted = await session.execute(
                pg_insert(processed_events_table)
                .values(rows)
                .on_conflict_do_nothing()
                .returning(processed_events_table.c.event_id)
            )
            fresh = set(inserted.scalars())
            ran = 0
            for event in events:
                if event.id not in fresh:
                    continue
                fresh.discard(event.id)  # the same event twice in one batch runs once
                with self._span(event):
                    await self._handler_for(event.subject).fn(session, event)
                ran += 1
            return ran

    def _span(self, event: Event[Any]) -> Any:
        return tracing.span_from(
            event.headers,
            f"consume {event.subject}",
            kind=tracing.SpanKind.CONSUMER,
            attributes={
                "messaging.destination.name": event.subject,
                "messaging.message.id": str(event.id),
                "messaging.consumer.group.name": self.spec.durable,
                "messaging.delivery": event.delivery,
            },
        )

    def _handler_for(self, subject: str) -> Handler:
        handler = self._handlers.get(subject)
        if handler is not None:
            return handler
        for pattern, candidate in self._handlers.items():
            if _subject_matches(pattern, subject):
                return candidate
        raise KeyError(f"no handler for {subject}")

    async def handle_message(self, msg: Msg) -> Settlement:
        """Handle one message in its own unit of work; decide how to settle. Never raises."""
        headers = dict(msg.headers or {})
        delivery = msg.metadata.num_delivered
        event_id = _event_id(msg, headers)
        if delivery > self.spec.max_deliveries:
            # Earlier deliveries never settled (the process died mid-handler).
            return await self._dead_letter(msg, event_id, delivery, "delivery limit reached without settling")
        try:
            event = self._decode(msg, headers, event_id, delivery)
        except (DecodeError, KeyError, ValueError) as exc:
            return await self._dead_letter(msg, event_id, delivery, f"undecodable event: {exc}")
        try:
            handled = await self._run_handlers([event])
        except Exception as exc:
            error = redact(f"{type(exc).__name__}: {exc}")[:2000]
            if delivery >= self.spec.max_deliveries:
                return await self._dead_letter(msg, event_id, delivery, error)
            delay = self.spec.backoff_for(delivery)
            log.warning(
                "consumer_handler_failed",
                consumer=self.name,
                subject=msg.subject,
                event_id=str(event_id),
                delivery=delivery,
                retry_in_s=delay,
                error=error,
            )
            self.stats.retried += 1
            return Settlement(Outcome.RETRY, delay)
        if handled:
            self.stats.handled += 1
        else:
            self.stats.skipped_duplicates += 1
        return Settlement(Outcome.ACK)

    async def settle(self, msg: Msg, settlement: Settlement) -> None:
        try:
            if settlement.outcome is Outcome.ACK:
                await msg.ack()
            elif settlement.outcome is Outcome.RETRY:
                await msg.nak(delay=settlement.delay)
            else:
                await msg.term()
        except Exception as exc:
            # The work is committed; a lost ack only means a redelivery that the
            # processed-event record turns into a no-op.
            log.warning("consumer_settle_failed", consumer=self.name, error=redact(str(exc))[:300])

    def _decode(self, msg: Msg, headers: dict[str, str], event_id: uuid.UUID, delivery: int) -> Event[Any]:
        payload = self._handler_for(msg.subject).message_type()
        payload.ParseFromString(msg.data)
        occurred = headers.get(HEADER_OCCURRED_AT)
        return Event(
            id=event_id,
            subject=msg.subject,
            payload=payload,
            occurred_at=datetime.fromisoformat(occurred) if occurred else None,
            delivery=delivery,
            headers=headers,
        )

    async def _dead_letter(self, msg: Msg, event_id: uuid.UUID, delivery: int, error: str) -> Settlement:
        subject = dlq_subject(self.service)
        letter = runtime_pb2.DeadLetter(
            event_id=str(event_id),
            subject=msg.subject,
            consumer=self.spec.durable,
            service=self.service,
            error=error,
            deliveries=delivery,
            payload=msg.data,
            headers={k: v for k, v in (msg.headers or {}).items() if not k.lower().startswith("nats-")},
        )
        try:
            async with self.db.unit_of_work() as session:
                add_event(
                    session, subject, letter, event_id=derived_id(_DLQ_NAMESPACE, self.spec.durable, event_id)
                )
        except Exception as exc:
            log.error(
                "dead_letter_failed", consumer=self.name, event_id=str(event_id), error=redact(str(exc))[:300]
            )
            return Settlement(Outcome.RETRY, self.spec.backoff_for(delivery))
        log.error(
            "consumer_dead_lettered",
            consumer=self.name,
            subject=msg.subject,
            event_id=str(event_id),
            deliveries=delivery,
            dlq_subject=subject,
            error=error,
        )
        self.stats.dead_lettered += 1
        return Settlement(Outcome.DEAD)


def _event_id(msg: Msg, headers: dict[str, str]) -> uuid.UUID:
    raw = headers.get(HEADER_MSG_ID)
    if raw:
        try:
            return uuid.UUID(raw)
        except ValueError:
            return derived_id(_DLQ_NAMESPACE, "msg-id", raw)
    meta = msg.metadata
    return derived_id(_DLQ_NAMESPACE, meta.stream, meta.sequence.stream)


def _subject_matches(pattern: str, subject: str) -> bool:
    p_tokens = pattern.split(".")
    s_tokens = subject.split(".")
    for i, part in enumerate(p_tokens):
        if part == ">":
            return len(s_tokens) > i
        if i >= len(s_tokens) or (part != "*" and part != s_tokens[i]):
            return False
    return len(p_tokens) == len(s_tokens)


def event_type_of(msg: Msg) -> str | None:
    return (msg.headers or {}).get(HEADER_EVENT_TYPE)


# --- ephemeral subscriptions -------------------------------------------------------------

EphemeralFn = Callable[[Event[Any]], Awaitable[None]]


@dataclass(frozen=True)
class EphemeralHandler:
    subject: str
    message_type: type[Message]
    fn: EphemeralFn


def on_each(
    subject: str, message_type: type[M]
) -> Callable[[Callable[[Event[M]], Awaitable[None]]], EphemeralHandler]:
    """Declare the in-memory reaction of one subject for an `EphemeralSubscription`."""

    def wrap(fn: Callable[[Event[M]], Awaitable[None]]) -> EphemeralHandler:
        return EphemeralHandler(subject=subject, message_type=message_type, fn=fn)

    return wrap


@dataclass
class EphemeralSubscription:
    """Every replica sees every new message of `filter_subject`, in order (an ordered push
    consumer per process, delivering from the moment it subscribes; NATS resumes it after a
    reconnect). Nothing is acked, recorded or retried: for in-memory reactions only (dropping
    cache entries, fanning out to attached clients). A handler that raises is logged and the
    next message is still delivered."""

    js: JetStreamContext
    stream: str
    filter_subject: str
    handlers: tuple[EphemeralHandler, ...]
    name: str = "ephemeral"
    received: int = 0
    _sub: Any = None

    async def start(self) -> None:
        self._sub = await self.js.subscribe(
            self.filter_subject,
            stream=self.stream,
            cb=self._deliver,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
            idle_heartbeat=5.0,
        )

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    def _handler(self, subject: str) -> EphemeralHandler | None:
        return next((h for h in self.handlers if _subject_matches(h.subject, subject)), None)

    async def _deliver(self, msg: Msg) -> None:
        handler = self._handler(msg.subject)
        if handler is None:
            return
        headers = dict(msg.headers or {})
        try:
            payload = handler.message_type()
            payload.ParseFromString(msg.data)
            occurred = headers.get(HEADER_OCCURRED_AT)
            event: Event[Any] = Event(
                id=_event_id(msg, headers),
                subject=msg.subject,
                payload=payload,
                occurred_at=datetime.fromisoformat(occurred) if occurred else None,
                delivery=1,
                headers=headers,
            )
            with tracing.span_from(
                headers,
                f"consume {msg.subject}",
                kind=tracing.SpanKind.CONSUMER,
                attributes={
                    "messaging.destination.name": msg.subject,
                    "messaging.consumer.group.name": self.name,
                },
            ):
                await handler.fn(event)
            self.received += 1
        except Exception as exc:
            log.warning(
                "ephemeral_handler_failed",
                subscription=self.name,
                subject=msg.subject,
                error=redact(f"{type(exc).__name__}: {exc}")[:500],
            )


RUNTIME_STREAMS: tuple[StreamSpec, ...] = (DLQ_STREAM,)
