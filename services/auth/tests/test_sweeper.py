"""The sweeper (auth.md §6): expiries and purges, with events, on the time the clock says."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from proliferate.auth.sweeper.service import sweep
from proliferate.kit.errors import RemoteError
from proliferate.protos.auth.v1 import auth_pb2 as pb

from .conftest import AuthApi, StartAuth


async def test_sweep_expires_invitations_and_purges_what_is_old(start_auth: StartAuth) -> None:
    auth = await start_auth(MAILER="disabled")
    owner = await auth.sign_up()
    principal = await auth.as_member(owner)
    for i in range(3):
        await auth.call(
            "CreateInvitation",
            pb.CreateInvitationRequest(
                organization_id=owner.org_id, email=f"i{i}@example.com", role="member"
            ),
            principal,
        )
    with contextlib.suppress(RemoteError):
        await auth.sign_in(owner.email, "wrong password!")  # leaves a rate-limit bucket
    auth.clock.advance(timedelta(days=15))
    ctx = _context(auth)
    counts = await sweep(ctx)
    assert counts["invitations_expired"] == 3
    assert counts["sign_ins_purged"] == 1 and counts["rate_limit_buckets_purged"] >= 1
    assert await auth.scalar("SELECT count(*) FROM invitations WHERE status = 'expired'") == 3
    assert (await auth.outbox_subjects()).count("proliferate.auth.invitation.expired") == 3
    assert (await sweep(ctx))["invitations_expired"] == 0


def _context(auth: AuthApi) -> object:
    """The sweeper needs only the database and the clock of a context."""
    return type("Ctx", (), {"db": auth.db, "clock": auth.clock})()
