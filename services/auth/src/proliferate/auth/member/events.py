from __future__ import annotations

from proliferate.kit.outbox import add_event
from proliferate.protos.events.v1 import auth_pb2 as ev
from sqlalchemy.ext.asyncio import AsyncSession

MEMBER_ADDED = "proliferate.auth.member.added"
MEMBER_UPDATED = "proliferate.auth.member.updated"
MEMBER_REMOVED = "proliferate.auth.member.removed"


def member_added(session: AsyncSession, organization_id: object, user_id: object, role: str) -> None:
    add_event(
        session,
        MEMBER_ADDED,
        ev.MemberAdded(organization_id=str(organization_id), user_id=str(user_id), role=role),
    )


def member_updated(
    session: AsyncSession, organization_id: object, user_id: object, old_role: str, new_role: str
) -> None:
    add_event(
        session,
        MEMBER_UPDATED,
        ev.MemberUpdated(
            organization_id=str(organization_id), user_id=str(user_id), old_role=old_role, new_role=new_role
        ),
    )


def member_removed(session: AsyncSession, organization_id: object, user_id: object) -> None:
    add_event(
        session, MEMBER_REMOVED, ev.MemberRemoved(organization_id=str(organization_id), user_id=str(user_id))
    )
