"""Password sign-up (auth.md §5.1; §10 lines 1-4)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import grpc
import pytest
from proliferate.devkit.platform import PlatformDatabase
from proliferate.protos.auth.v1 import auth_pb2 as pb

from ..conftest import PASSWORD, AuthApi, StartAuth, expect_error  # noqa: TID252 - the shared test helpers


class TestSignUp:
    async def test_creates_user_account_personal_org_owner_and_sign_in_in_one_transaction(
        self, auth: AuthApi
    ) -> None:
        account = await auth.sign_up("Ana@Example.com", name="Ana Lima")
        principal = await auth.authenticate(account.token)
        assert principal.user_id == account.user_id
        assert principal.role == "owner"
        assert principal.organization_id == account.org_id
        user = (await auth.rows("SELECT email, email_normalized FROM users"))[0]
        assert (user.email, user.email_normalized) == ("Ana@Example.com", "ana@example.com")
        org = (
            await auth.rows(
                "SELECT name, slug, is_personal, personal_owner_user_id::text AS owner FROM organizations"
            )
        )[0]
        assert org.is_personal and org.owner == account.user_id
        assert org.name == "Ana Lima's organization"
        assert org.slug == f"ana-lima-{account.user_id.replace('-', '')[-8:]}"
        assert await auth.scalar("SELECT role FROM members") == "owner"
        assert await auth.scalar("SELECT provider FROM accounts") == "password"
        assert await auth.scalar("SELECT count(*) FROM sign_ins") == 1
        assert sorted(await auth.outbox_subjects()) == sorted(
            [
                "proliferate.auth.user.created",
                "proliferate.auth.organization.created",
                "proliferate.auth.member.added",
            ]
        )

    async def test_two_users_with_the_same_name_get_distinct_personal_slugs(self, auth: AuthApi) -> None:
        await asyncio.gather(auth.sign_up(name="Ana"), auth.sign_up(name="Ana"))
        slugs = [r.slug for r in await auth.rows("SELECT slug FROM organizations WHERE is_personal")]
        assert len(slugs) == 2 and len(set(slugs)) == 2
        assert all(s.startswith("ana-") for s in slugs)

    async def test_concurrent_sign_ups_differing_in_case_one_wins_the_other_is_email_taken(
        self, auth: AuthApi
    ) -> None:
        results = await asyncio.gather(auth.sign_up("A@x.io"), auth.sign_up("a@x.io"), return_exceptions=True)
        failures = [r for r in results if isinstance(r, Exception)]
        assert len(failures) == 1
        assert getattr(failures[0], "code", None) == "email_taken"
        assert await auth.scalar("SELECT count(*) FROM users") == 1
        assert await auth.scalar("SELECT count(*) FROM organizations") == 1

    async def test_taken_email_is_409_email_taken(self, auth: AuthApi) -> None:
        await auth.sign_up("taken@example.com")
        await expect_error(auth.sign_up("TAKEN@example.com"), "email_taken", grpc.StatusCode.ALREADY_EXISTS)

    @pytest.mark.parametrize(
        ("email", "password", "name", "field"),
        [
            ("not-an-email", PASSWORD, "Ana", "email"),
            ("ok@example.com", "short", "Ana", "password"),
            ("ok@example.com", "x" * 257, "Ana", "password"),
            ("ok@example.com", PASSWORD, "\x00\x01", "name"),
            ("ok@example.com", PASSWORD, "n" * 101, "name"),
        ],
    )
    async def test_bad_input_is_invalid_argument_naming_the_field(
        self, auth: AuthApi, email: str, password: str, name: str, field: str
    ) -> None:
        error = await expect_error(
            auth.call("SignUp", pb.SignUpRequest(email=email, password=password, name=name)),
            "invalid_argument",
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert error.details["fields"][0]["field"] == field
        assert await auth.scalar("SELECT count(*) FROM users") == 0


KILLED_MID_TRANSACTION = textwrap.dedent(
    """
    import asyncio, os
    from proliferate.auth.user.service import register_user
    from proliferate.kit.db import Database

    async def main():
        db = Database(os.environ["DATABASE_URL"], "auth")
        async with db.unit_of_work() as session:
            await register_user(session, email="crash@example.com", name="Crash", verified_at=None)
            await session.flush()
            print("inserted", flush=True)
            os._exit(9)  # the process dies between the inserts and the commit

    asyncio.run(main())
    """
)


def test_a_process_killed_between_insert_and_commit_leaves_no_user_without_org(
    platform_db: PlatformDatabase,
) -> None:
    env = {**os.environ, "DATABASE_URL": platform_db.service_url("auth")}
    result = subprocess.run(
        [sys.executable, "-c", KILLED_MID_TRANSACTION], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 9 and "inserted" in result.stdout, result.stderr
    import psycopg
    from proliferate.kit.db import libpq_url

    with psycopg.connect(libpq_url(platform_db.service_url("auth"))) as conn:
        users = conn.execute("SELECT count(*) FROM auth.users").fetchone()
        orphans = conn.execute(
            "SELECT count(*) FROM auth.users u WHERE NOT EXISTS"
            " (SELECT 1 FROM auth.organizations o WHERE o.personal_owner_user_id = u.id)"
        ).fetchone()
    assert users == (0,) and orphans == (0,)


async def test_with_a_signup_allowlist_only_listed_or_invited_emails_sign_up(start_auth: StartAuth) -> None:
    auth = await start_auth(ALLOWED_SIGNUP_EMAILS="boss@acme.io", MAILER="disabled")
    await expect_error(auth.sign_up("stranger@acme.io"), "signup_closed", grpc.StatusCode.PERMISSION_DENIED)
    boss = await auth.sign_up("Boss@Acme.io")
    await auth.call(
        "CreateInvitation",
        pb.CreateInvitationRequest(organization_id=boss.org_id, email="new@acme.io", role="member"),
        await auth.as_member(boss),
    )
    assert (await auth.sign_up("new@acme.io")).user_id
    assert not (await auth.call("ListSignInProviders")).signup_open
