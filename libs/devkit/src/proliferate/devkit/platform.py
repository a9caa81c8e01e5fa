"""A platform database: every service's role and schema provisioned and migrated.

Shared by the test fixtures and the `make dev` launcher, so both see exactly what a
production migration produces.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
from proliferate.kit.db import libpq_url
from proliferate.kit.migrations import provision, service_url, upgrade
from proliferate.kit.topology import SERVICES
from psycopg import sql


def derive_password(seed: str, service: str) -> str:
    """A per-service role password derived from one seed (dev and tests only)."""
    return hmac.new(seed.encode(), f"role:{service}".encode(), hashlib.sha256).hexdigest()


def with_database(url: str, database: str) -> str:
    parts = urlsplit(libpq_url(url))
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


@dataclass(frozen=True)
class PlatformDatabase:
    """One database holding every service schema, each owned by its service role."""

    server_admin_url: str  # the administrator URL on the server (any database)
    database: str
    password_seed: str

    @property
    def admin_url(self) -> str:
        return with_database(self.server_admin_url, self.database)

    def service_url(self, service: str) -> str:
        return service_url(
            self.admin_url, service, derive_password(self.password_seed, service), self.database
        )

    def create_database(self) -> None:
        """Create the database if missing (an administrator connection is needed)."""
        with psycopg.connect(libpq_url(self.server_admin_url), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
            # Only the service roles we grant explicitly may connect.
            conn.execute(
                sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(self.database))
            )

    def drop_database(self) -> None:
        with psycopg.connect(libpq_url(self.server_admin_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.database))
            )

    def migrate(self, services: Iterable[str] = SERVICES) -> None:
        for service in services:
            provision(self.admin_url, service, derive_password(self.password_seed, service))
            upgrade(service, self.service_url(service))


def new_test_database(server_admin_url: str) -> PlatformDatabase:
    return PlatformDatabase(
        server_admin_url=server_admin_url,
        database=f"proliferate_test_{secrets.token_hex(4)}",
        password_seed="proliferate-test-role-passwords",  # noqa: S106 - test databases only
    )
