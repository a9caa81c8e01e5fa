from __future__ import annotations

from proliferate.kit.outbox import add_event
from proliferate.protos.events.v1 import auth_pb2 as ev
from sqlalchemy.ext.asyncio import AsyncSession

IMPERSONATION_STARTED = "proliferate.auth.impersonation.started"
IMPERSONATION_STOPPED = "proliferate.auth.impersonation.stopped"


def impersonation_started(
    session: AsyncSession, actor: object, target: object, organization_id: object
) -> None:
    add_event(
        session,
        IMPERSONATION_STARTED,
        ev.ImpersonationStarted(
            actor_user_id=str(actor), target_user_id=str(target), organization_id=str(organization_id)
        ),
    )


def impersonation_stopped(
    session: AsyncSession, actor: object, target: object, organization_id: object
) -> None:
    add_event(
        session,
        IMPERSONATION_STOPPED,
        ev.ImpersonationStopped(
            actor_user_id=str(actor), target_user_id=str(target), organization_id=str(organization_id)
        ),
    )
