from __future__ import annotations

from proliferate.kit.outbox import add_event
from proliferate.protos.events.v1 import auth_pb2 as ev
from sqlalchemy.ext.asyncio import AsyncSession

ONBOARDING_COMPLETED = "proliferate.auth.onboarding.completed"


def onboarding_completed(session: AsyncSession, organization_id: object, user_id: object, plan: str) -> None:
    add_event(
        session,
        ONBOARDING_COMPLETED,
        ev.OnboardingCompleted(organization_id=str(organization_id), user_id=str(user_id), plan=plan),
    )
