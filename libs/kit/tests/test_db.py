from __future__ import annotations

import importlib
from collections.abc import Callable

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from proliferate.devkit.platform import PlatformDatabase
from proliferate.kit.db import Database, libpq_url, periodic_jobs_table, runtime_metadata, sqlalchemy_url
from proliferate.kit.topology import SERVICES
from sqlalchemy.exc import ProgrammingError


class TestUnitOfWork:
    async def test_commits_when_the_block_ends(self, databases: Callable[[str], Database]) -> None:
        db = databases("auth")
        async with db.unit_of_work() as session:
            await session.execute(
                sa.insert(periodic_jobs_table).values(name="committed", last_started_at=sa.func.now())
            )
        async with db.unit_of_work() as session:
            names = (await session.execute(sa.select(periodic_jobs_table.c.name))).scalars().all()
        assert names == ["committed"]

    async def test_rolls_back_when_the_block_raises(self, databases: Callable[[str], Database]) -> None:
        db = databases("auth")
        with pytest.raises(RuntimeError):
            async with db.unit_of_work() as session:
                await session.execute(
                    sa.insert(periodic_jobs_table).values(name="rolled-back", last_started_at=sa.func.now())
                )
                await session.flush()
                raise RuntimeError("boom")
        async with db.unit_of_work() as session:
            count = (
                await session.execute(sa.select(sa.func.count()).select_from(periodic_jobs_table))
            ).scalar()
        assert count == 0

    async def test_unqualified_names_resolve_to_the_service_schema(
        self, databases: Callable[[str], Database]
    ) -> None:
        async with databases("billing").unit_of_work() as session:
            schema = (await session.execute(sa.text("SELECT current_schema()"))).scalar()
            user = (await session.execute(sa.text("SELECT current_user"))).scalar()
        assert schema == "billing"
        assert user == "proliferate_billing"


class TestSchemaIsolation:
    @pytest.mark.parametrize("service", SERVICES)
    async def test_role_cannot_read_or_write_another_schema(
        self, service: str, databases: Callable[[str], Database]
    ) -> None:
        other = SERVICES[(SERVICES.index(service) + 1) % len(SERVICES)]
        db = databases(service)
        with pytest.raises(ProgrammingError, match="permission denied for schema"):
            async with db.unit_of_work() as session:
                await session.execute(sa.text(f"SELECT count(*) FROM {other}.outbox"))
        with pytest.raises(ProgrammingError, match="permission denied for schema"):
            async with db.unit_of_work() as session:
                await session.execute(
                    sa.text(f"INSERT INTO {other}.periodic_jobs (name, last_started_at) VALUES ('x', now())")
                )
        with pytest.raises(ProgrammingError, match="permission denied"):
            async with db.unit_of_work() as session:
                await session.execute(sa.text(f"CREATE TABLE {other}.intruder (id int)"))

    async def test_role_cannot_create_in_public(self, databases: Callable[[str], Database]) -> None:
        with pytest.raises(ProgrammingError, match="permission denied"):
            async with databases("auth").unit_of_work() as session:
                await session.execute(sa.text("CREATE TABLE public.intruder (id int)"))


class TestMigrations:
    @pytest.mark.parametrize("service", SERVICES)
    def test_version_table_lives_in_the_service_schema(
        self, service: str, platform_db: PlatformDatabase
    ) -> None:
        with psycopg.connect(libpq_url(platform_db.admin_url)) as conn:
            own = conn.execute("SELECT to_regclass(%s)", (f"{service}.alembic_version",)).fetchone()
            public = conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()
            owner = conn.execute(
                "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s", (service,)
            ).fetchone()
        assert own is not None and own[0] is not None
        assert public is not None and public[0] is None
        assert owner is not None and owner[0] == f"proliferate_{service}"

    @pytest.mark.parametrize("service", SERVICES)
    def test_models_and_runtime_tables_match_the_migrations(
        self, service: str, platform_db: PlatformDatabase
    ) -> None:
        models = importlib.import_module(f"proliferate.{service}.models")
        engine = sa.create_engine(
            sqlalchemy_url(platform_db.service_url(service)),
            connect_args={"options": f"-c search_path={service}"},
        )
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, [models.Base.metadata, runtime_metadata])
        engine.dispose()
        assert diff == []
