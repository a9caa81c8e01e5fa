"""Database: one async engine per service, bound to the service's own schema and role.

The engine connects as the service's role with `search_path` set to its schema, so
unqualified table names resolve only there, and the role has no rights anywhere else.
A *unit of work* is one transaction: it commits once when the block ends and rolls back
on any error. Services flush; only this module commits.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from proliferate.kit.logs import get_logger
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.sql import Select

log = get_logger("proliferate.kit.db")

# Constraint names every service's models use, so migrations name things predictably.
NAMING_CONVENTION = {
    "ix": "%(table_name)s_%(column_0_N_name)s_idx",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


def service_metadata() -> sa.MetaData:
    """The MetaData of a service's models (no schema: `search_path` places the tables)."""
    return sa.MetaData(naming_convention=NAMING_CONVENTION)


# Tables every service has in its own schema (created by its first migration).
runtime_metadata = sa.MetaData()

outbox_table = sa.Table(
    "outbox",
    runtime_metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),  # the event id = Nats-Msg-Id
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("headers", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index(
        "outbox_unpublished_idx",
        "next_attempt_at",
        "created_at",
        postgresql_where=sa.text("published_at IS NULL"),
    ),
    sa.Index("outbox_published_at_idx", "published_at", postgresql_where=sa.text("published_at IS NOT NULL")),
)

processed_events_table = sa.Table(
    "processed_events",
    runtime_metadata,
    sa.Column("consumer", sa.Text, primary_key=True),
    sa.Column("event_id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("processed_events_processed_at_idx", "processed_at"),
)

periodic_jobs_table = sa.Table(
    "periodic_jobs",
    runtime_metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("holder", sa.Text, nullable=True),
)


def sqlalchemy_url(url: str) -> str:
    """`postgres://` / `postgresql://` → the SQLAlchemy psycopg 3 dialect URL (sync and async)."""
    return _with_scheme(url, "postgresql+psycopg")


def libpq_url(url: str) -> str:
    """The plain libpq form, for psycopg connections made without SQLAlchemy."""
    return _with_scheme(url, "postgresql")


def _with_scheme(url: str, scheme: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def url_user(url: str) -> str | None:
    return urlsplit(url).username


OUTBOX_PENDING = "proliferate_outbox_pending"
# Arrays per column (`unnest`): one statement whatever the number of events, so neither
# SQLAlchemy nor psycopg compiles or parses a new query per transaction.
_STAGE_OUTBOX = sa.text(
    "WITH staged AS (INSERT INTO outbox (id, subject, event_type, payload, headers)"
    " SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:subjects AS text[]), CAST(:event_types AS text[]),"
    " CAST(:payloads AS bytea[]), CAST(:headers AS jsonb[]))"
    " ON CONFLICT (id) DO NOTHING) SELECT pg_notify(:channel, '')"
)


def outbox_channel(schema: str) -> str:
    return f"proliferate_outbox_{schema}"


class Database:
    """The engine and session factory of one service schema."""

    def __init__(
        self, url: str, schema: str, *, pool_size: int = 10, application_name: str | None = None
    ) -> None:
        self.url = url
        self.schema = schema
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_recycle=1800,
            connect_args={
                "options": f"-c search_path={schema}",
                "application_name": application_name or f"proliferate-{schema}",
                "connect_timeout": 5,
            },
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=True)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await self._flush_outbox(session)
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def _flush_outbox(self, session: AsyncSession) -> None:
        rows: list[dict[str, Any]] = session.info.pop(OUTBOX_PENDING, [])
        if not rows:
            return
        # One fixed statement for all events of the transaction (a repeated event id is a
        # no-op); NOTIFY is delivered at commit, so the relay wakes only for committed events.
        await session.execute(
            _STAGE_OUTBOX,
            {
                "ids": [row["id"] for row in rows],
                "subjects": [row["subject"] for row in rows],
                "event_types": [row["event_type"] for row in rows],
                "payloads": [row["payload"] for row in rows],
                "headers": [json.dumps(row["headers"]) for row in rows],
                "channel": outbox_channel(self.schema),
            },
        )

    async def wait_until_reachable(self, *, max_delay: float = 30.0, attempts: int | None = None) -> None:
        """Retry with backoff until the database answers; say so in the log each time."""
        delay = 0.5
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self.engine.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
                if attempt > 1:
                    log.info("postgres_reachable", attempt=attempt)
                return
            except Exception as exc:
                if attempts is not None and attempt >= attempts:
                    raise
                log.warning("postgres_unreachable", attempt=attempt, retry_in_s=delay, error=str(exc)[:300])
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)

    async def dispose(self) -> None:
        await self.engine.dispose()


T = TypeVar("T")


async def in_unit_of_work(db: Database, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async with db.unit_of_work() as session:
        return await fn(session)


SelectT = TypeVar("SelectT", bound=Select[Any])


def for_organization(stmt: SelectT, column: Any, organization_id: Any) -> SelectT:
    """Scope a query to one organization: the one helper every repository uses."""
    if organization_id is None:
        raise ValueError("an organization-owned query needs an organization_id")
    return stmt.where(column == organization_id)
