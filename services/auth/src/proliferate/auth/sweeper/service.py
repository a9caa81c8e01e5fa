"""Every 15 minutes, on one replica per tick (kit.periodic): overdue invitations become
`expired` (with their events, in batches of 500 claimed with SKIP LOCKED), sign-ins expired
more than 7 days ago are purged, and OAuth states, verification/reset links and rate-limit
buckets older than a day go too."""

from __future__ import annotations

from datetime import timedelta

from proliferate.auth.context import AuthContext
from proliferate.auth.invitation.service import expire_due
from proliferate.auth.models import EmailVerification, PasswordReset
from proliferate.auth.oauth.repository import OAuthStateRepository
from proliferate.auth.rate_limit.repository import RateLimitRepository
from proliferate.auth.sign_in.repository import SignInRepository
from proliferate.auth.user.repository import LinkRepository
from proliferate.kit.logs import get_logger

log = get_logger("proliferate.auth.sweeper")
BATCH = 500
INTERVAL_SECONDS = 15 * 60


async def sweep(ctx: AuthContext) -> dict[str, int]:
    now = ctx.clock.now()
    expired = 0
    while True:
        async with ctx.db.unit_of_work() as session:
            done = await expire_due(session, now, BATCH)
        expired += done
        if done < BATCH:
            break
    day_ago = now - timedelta(days=1)
    async with ctx.db.unit_of_work() as session:
        counts = {
            "invitations_expired": expired,
            "sign_ins_purged": await SignInRepository(session).purge_expired_before(now - timedelta(days=7)),
            "oauth_states_purged": await OAuthStateRepository(session).purge_older_than(day_ago),
            "verifications_purged": await LinkRepository(session, EmailVerification).purge_older_than(
                day_ago
            ),
            "password_resets_purged": await LinkRepository(session, PasswordReset).purge_older_than(day_ago),
            "rate_limit_buckets_purged": await RateLimitRepository(session).purge_older_than(day_ago),
        }
    log.info("auth_swept", **counts)
    return counts
