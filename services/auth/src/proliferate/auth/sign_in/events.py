from __future__ import annotations

from proliferate.kit.outbox import add_event
from proliferate.protos.events.v1 import auth_pb2 as ev
from sqlalchemy.ext.asyncio import AsyncSession

SIGN_IN_REVOKED = "proliferate.auth.sign_in.revoked"
SIGN_IN_UPDATED = "proliferate.auth.sign_in.updated"


def sign_in_revoked(session: AsyncSession, sign_in_id: object, user_id: object) -> None:
    add_event(session, SIGN_IN_REVOKED, ev.SignInRevoked(sign_in_id=str(sign_in_id), user_id=str(user_id)))


def sign_in_updated(
    session: AsyncSession, sign_in_id: object, user_id: object, organization_id: object
) -> None:
    add_event(
        session,
        SIGN_IN_UPDATED,
        ev.SignInUpdated(
            sign_in_id=str(sign_in_id),
            user_id=str(user_id),
            active_organization_id=str(organization_id or ""),
        ),
    )
