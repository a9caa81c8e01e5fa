"""Local development: the `make dev` hook of auth and `python -m proliferate.auth seed-dev`
(auth.md §5.13).

- `dev_environment`: an Ed25519 signing key generated once and kept in .dev/secrets.json, so
  tokens survive restarts; links in mails point at the gateway.
- `dev_after_start`: runs `seed-dev`, which idempotently creates the verified user
  `dev@localhost`, its personal organization and a sign-in, and prints a token that works
  against `GET /v1/auth/me`. The token is kept in .dev/ too, so it stays the same.
- `seed-dev` refuses to run with `PROLIFERATE_ENV=production`. Nothing in the request path
  knows about the dev user.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from proliferate.auth import credentials
from proliferate.auth.clock import Clock, SystemClock
from proliferate.auth.sign_in.repository import SignInRepository
from proliferate.auth.sign_in.service import SIGN_IN_TTL, choose_organization
from proliferate.auth.token.signing import SigningKeys
from proliferate.auth.user.repository import UserRepository
from proliferate.auth.user.service import register_user
from proliferate.kit.db import Database
from proliferate.kit.settings import exit_with_line, load_settings_or_exit

if TYPE_CHECKING:
    from proliferate.devkit.launcher import DevContext

DEV_EMAIL = "dev@localhost"
TOKEN_LINE = "sign-in token: "  # noqa: S105 - a label, not a secret


@dataclass(frozen=True)
class Seeded:
    user_id: str
    organization_id: str
    token: str
    created_user: bool


async def seed(db: Database, token: str | None, clock: Clock | None = None) -> Seeded:
    """The dev user, its personal organization and an active sign-in for `token` (a new token
    when none is given or it cannot be used any more). Running it again changes nothing."""
    now = (clock or SystemClock()).now()
    async with db.unit_of_work() as session:
        user = await UserRepository(session).get_by_email(DEV_EMAIL)
        created = user is None
        if user is None:
            registered = await register_user(session, email=DEV_EMAIL, name="Dev", verified_at=now)
            assert registered is not None
            user = registered.user
        org_id, _ = await choose_organization(session, user.id)
        sign_ins = SignInRepository(session)
        active = await sign_ins.get_active_by_hash(credentials.hash_token(token), now) if token else None
        if active is None or active.user_id != user.id:
            if token is None or await _hash_taken(sign_ins, token):
                token = credentials.new_token()
            await sign_ins.insert(
                user_id=user.id,
                token_hash=credentials.hash_token(token),
                active_organization_id=org_id,
                ip=None,
                user_agent="seed-dev",
                now=now,
                expires_at=now + SIGN_IN_TTL,
            )
    assert token is not None
    return Seeded(str(user.id), str(org_id or ""), token, created)


async def _hash_taken(sign_ins: SignInRepository, token: str) -> bool:
    return await sign_ins.exists_with_hash(credentials.hash_token(token))


def seed_dev_main() -> None:
    """`python -m proliferate.auth seed-dev`: prints the user, organization and token."""
    from proliferate.auth.bootstrap import Settings

    settings = load_settings_or_exit(Settings, "auth")
    if settings.proliferate_env == "production":
        exit_with_line("auth: seed-dev refuses to run with PROLIFERATE_ENV=production")

    async def run() -> Seeded:
        db = Database(settings.database_url, "auth", pool_size=1)
        try:
            return await seed(db, settings.dev_sign_in_token)
        finally:
            await db.dispose()

    seeded = asyncio.run(run())
    print(f"user: {DEV_EMAIL} ({seeded.user_id}){' created' if seeded.created_user else ''}")
    print(f"organization: {seeded.organization_id}")
    print(f"{TOKEN_LINE}{seeded.token}", flush=True)


# --- make dev hooks ------------------------------------------------------------------------


def dev_environment(ctx: DevContext) -> dict[str, dict[str, str]]:
    keys = ctx.secret("auth_signing_keys", lambda: SigningKeys.generate_setting("dev-1"))
    return {"auth": {"AUTH_SIGNING_KEYS": keys, "PUBLIC_API_URL": ctx.gateway_url}}


async def dev_after_start(ctx: DevContext) -> list[str]:
    token = ctx.secret("dev_sign_in_token", credentials.new_token)
    env = {**ctx.env["auth"], "DEV_SIGN_IN_TOKEN": token}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "proliferate.auth",
        "seed-dev",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        return [f"auth seed-dev failed: {err.decode(errors='replace').strip()[-500:]}"]
    lines = out.decode().splitlines()
    printed = next((line[len(TOKEN_LINE) :] for line in lines if line.startswith(TOKEN_LINE)), token)
    if printed != token:  # the kept token could not be used (revoked): keep the new one
        ctx.state.values["dev_sign_in_token"] = printed
        ctx.state.path.write_text(json.dumps(ctx.state.values, indent=2))
        os.chmod(ctx.state.path, 0o600)
    return [
        f"dev user {DEV_EMAIL} with its organization (python -m proliferate.auth seed-dev)",
        f"sign-in token: {printed}",
        f"  curl -H 'Authorization: Bearer {printed}' {ctx.gateway_url}/v1/auth/me",
    ]
