"""Schemas, roles and Alembic migrations, one history per service.

`provision()` (run with an administrator URL) creates the service's role and its schema,
owned by that role; the role gets no rights anywhere else. `upgrade()` runs the service's
Alembic history as the service role, with the version table in the service's schema.

`proliferate-migrate` migrates every service in one command:

    DATABASE_ADMIN_URL=postgresql://admin@db/proliferate      # optional: provision roles/schemas
    AUTH_DATABASE_URL=postgresql://proliferate_auth:pw@db/proliferate
    ...one <SERVICE>_DATABASE_URL per service...
    proliferate-migrate [service ...]
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from proliferate.kit.db import libpq_url, sqlalchemy_url
from proliferate.kit.topology import SERVICES
from psycopg import sql


def role_name(service: str) -> str:
    return f"proliferate_{service}"


def service_url(admin_url: str, service: str, password: str, database: str | None = None) -> str:
    """The URL of `service`'s role on the server and database of `admin_url`."""
    parts = urlsplit(libpq_url(admin_url))
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{role_name(service)}:{quote(password, safe='')}@{host}{port}"
    path = f"/{database}" if database else parts.path
    return urlunsplit(("postgresql", netloc, path, parts.query, ""))


def provision(admin_url: str, service: str, password: str, role: str | None = None) -> None:
    """Create or update the service's role (login, password) and its own schema. Idempotent."""
    role = role or role_name(service)
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        database = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
        conn.execute(
            sql.SQL("{} ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                verb, sql.Identifier(role), sql.Literal(password)
            )
        )
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier(role)
            )
        )
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                sql.Identifier(service), sql.Identifier(role)
            )
        )
        conn.execute(
            sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(service), sql.Identifier(role))
        )


def migrations_dir(service: str) -> Path:
    root = os.environ.get("PROLIFERATE_MIGRATIONS_ROOT")
    if root:
        return Path(root) / service / "migrations"
    spec = importlib.util.find_spec(f"proliferate.{service}")
    if spec is None or spec.origin is None:
        raise RuntimeError(f"service package proliferate.{service} is not installed")
    # services/<service>/src/proliferate/<service>/__init__.py -> services/<service>/migrations
    return Path(spec.origin).resolve().parents[3] / "migrations"


def alembic_config(service: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir(service)))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    cfg.attributes["proliferate_schema"] = service
    return cfg


def upgrade(service: str, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(service, url), revision)


def run_migrations(target_metadata: sa.MetaData | None) -> None:
    """The body of every service's `migrations/env.py`."""
    config = context.config
    schema = config.attributes.get("proliferate_schema") or os.environ["PROLIFERATE_SCHEMA"]
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = sa.create_engine(
        url,
        poolclass=sa.pool.NullPool,
        connect_args={"options": f"-c search_path={schema}"},
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
            include_schemas=False,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def create_runtime_tables_v1() -> None:
    """First migration of every service: outbox, processed events, periodic jobs.

    Frozen: a later change to the runtime tables is a new helper and a new migration in
    every service, so existing schemas and fresh ones stay identical.
    """
    from alembic import op
    from sqlalchemy.dialects import postgresql as pg

    op.create_table(
        "outbox",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("headers", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "outbox_unpublished_idx",
        "outbox",
        ["next_attempt_at", "created_at"],
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_index(
        "outbox_published_at_idx",
        "outbox",
        ["published_at"],
        postgresql_where=sa.text("published_at IS NOT NULL"),
    )
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("processed_events_processed_at_idx", "processed_events", ["processed_at"])
    op.create_table(
        "periodic_jobs",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("holder", sa.Text, nullable=True),
    )


def drop_runtime_tables_v1() -> None:
    from alembic import op

    for table in ("periodic_jobs", "processed_events", "outbox"):
        op.drop_table(table)


def main(argv: list[str] | None = None) -> None:
    """`proliferate-migrate [service ...]`: provision (with an admin URL) and upgrade."""
    args = sys.argv[1:] if argv is None else argv
    services = args or [s for s in SERVICES if os.environ.get(f"{s.upper()}_DATABASE_URL")]
    if not services:
        print("proliferate-migrate: set <SERVICE>_DATABASE_URL for at least one service", file=sys.stderr)
        raise SystemExit(2)
    admin = os.environ.get("DATABASE_ADMIN_URL")
    for service in services:
        if service not in SERVICES:
            print(f"proliferate-migrate: unknown service {service}", file=sys.stderr)
            raise SystemExit(2)
        url = os.environ.get(f"{service.upper()}_DATABASE_URL")
        if not url:
            print(f"proliferate-migrate: setting {service.upper()}_DATABASE_URL is missing", file=sys.stderr)
            raise SystemExit(2)
        if admin:
            parts = urlsplit(url)
            provision(admin, service, parts.password or "", role=parts.username)
        upgrade(service, url)
        print(f"migrated {service}", flush=True)
