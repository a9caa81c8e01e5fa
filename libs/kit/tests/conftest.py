from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import psycopg
import pytest_asyncio
from google.protobuf import struct_pb2
from proliferate.devkit.platform import PlatformDatabase
from proliferate.kit.db import Database, libpq_url

EFFECTS_TABLE = "kit_test_effects"


def probe_event(**fields: object) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(fields)
    return message


@pytest_asyncio.fixture
async def effects(platform_db: PlatformDatabase, databases: Callable[[str], Database]) -> AsyncIterator[str]:
    """A scratch table in the auth schema, owned by the auth role, for handler side effects."""
    with psycopg.connect(libpq_url(platform_db.service_url("auth")), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS auth.{EFFECTS_TABLE} (event_id uuid NOT NULL, note text)")
    yield EFFECTS_TABLE
    with psycopg.connect(libpq_url(platform_db.service_url("auth")), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS auth.{EFFECTS_TABLE}")
