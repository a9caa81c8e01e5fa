"""The limits of auth.md §6: password sign-in failures per email and per IP, sign-ups per IP,
invitations per org, organizations per user, verification resends per user."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from proliferate.auth.errors import TooManyRequests
from proliferate.auth.rate_limit.repository import RateLimitRepository
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class Limit:
    name: str
    count: int
    window: timedelta

    def key(self, subject: str) -> str:
        return f"{self.name}:{subject}"


SIGN_IN_FAILURES_PER_EMAIL = Limit("sign_in_failures_email", 10, timedelta(minutes=15))
SIGN_IN_FAILURES_PER_IP = Limit("sign_in_failures_ip", 50, timedelta(minutes=15))
SIGN_UPS_PER_IP = Limit("sign_ups_ip", 20, timedelta(hours=1))
INVITATIONS_PER_ORG = Limit("invitations_org", 50, timedelta(days=1))
ORGANIZATIONS_PER_USER = Limit("organizations_user", 20, timedelta(days=1))
VERIFICATION_RESENDS_PER_USER = Limit("verification_resends_user", 3, timedelta(hours=1))
PASSWORD_RESETS_PER_USER = Limit("password_resets_user", 3, timedelta(hours=1))


def _refusal(limit: Limit, window_start: datetime, now: datetime) -> TooManyRequests:
    retry_after = max(1, math.ceil((window_start + limit.window - now).total_seconds()))
    return TooManyRequests(retry_after_s=retry_after, limit=limit.name)


async def consume(session: AsyncSession, limit: Limit, subject: str, now: datetime) -> None:
    """Count an attempt; raise `too_many_requests` once the window holds more than allowed."""
    count, window_start = await RateLimitRepository(session).hit(limit.key(subject), now, limit.window)
    if count > limit.count:
        raise _refusal(limit, window_start, now)


async def check(session: AsyncSession, limit: Limit, subject: str, now: datetime) -> None:
    """Raise `too_many_requests` if the window is already full (counts nothing)."""
    current = await RateLimitRepository(session).peek(limit.key(subject), now, limit.window)
    if current is not None and current[0] >= limit.count:
        raise _refusal(limit, current[1], now)


async def record(session: AsyncSession, limit: Limit, subject: str, now: datetime) -> None:
    await RateLimitRepository(session).hit(limit.key(subject), now, limit.window)
