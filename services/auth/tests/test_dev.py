"""`python -m proliferate.auth seed-dev` (auth.md §5.13; §10 line 35)."""

from __future__ import annotations

import os
import subprocess
import sys

from proliferate.devkit.platform import PlatformDatabase
from proliferate.devkit.pytest_plugin import TEST_SERVICE_AUTH_SECRET, register_canary

from .conftest import AuthApi


def seed_dev(platform_db: PlatformDatabase, **env: str) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "DATABASE_URL": platform_db.service_url("auth"),
        "NATS_URL": "nats://127.0.0.1:4222",
        "SERVICE_AUTH_SECRET": TEST_SERVICE_AUTH_SECRET,
        "PROLIFERATE_ENV": "dev",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "proliferate.auth", "seed-dev"],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )


def token_of(result: subprocess.CompletedProcess[str]) -> str:
    line = next(line for line in result.stdout.splitlines() if line.startswith("sign-in token: "))
    return register_canary(line.removeprefix("sign-in token: "))


async def test_seed_dev_is_idempotent_and_its_token_works(
    auth: AuthApi, platform_db: PlatformDatabase
) -> None:
    first = seed_dev(platform_db)
    assert first.returncode == 0, first.stderr
    token = token_of(first)
    principal = await auth.authenticate(token)
    assert (principal.email, principal.role) == ("dev@localhost", "owner")
    again = seed_dev(platform_db, DEV_SIGN_IN_TOKEN=token)
    assert again.returncode == 0, again.stderr
    assert token_of(again) == token  # the kept token is reused, not replaced
    assert await auth.scalar("SELECT count(*) FROM users") == 1
    assert await auth.scalar("SELECT count(*) FROM organizations WHERE is_personal") == 1
    assert await auth.scalar("SELECT count(*) FROM sign_ins") == 1
    assert await auth.scalar("SELECT email_verified_at IS NOT NULL FROM users")
    # A kept token that no longer works (signed out) is replaced by a new one.
    await auth.call("SignOut", principal=principal)
    fresh = token_of(seed_dev(platform_db, DEV_SIGN_IN_TOKEN=token))
    assert fresh != token and (await auth.authenticate(fresh)).email == "dev@localhost"


def test_seed_dev_refuses_production(platform_db: PlatformDatabase) -> None:
    result = seed_dev(platform_db, PROLIFERATE_ENV="production")
    assert result.returncode == 2
    assert result.stderr == "auth: seed-dev refuses to run with PROLIFERATE_ENV=production\n"
    assert "sign-in token" not in result.stdout
