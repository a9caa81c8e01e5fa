from __future__ import annotations

from proliferate.auth.models import User
from proliferate.kit.outbox import add_event
from proliferate.protos.events.v1 import auth_pb2 as ev
from sqlalchemy.ext.asyncio import AsyncSession

USER_CREATED = "proliferate.auth.user.created"
USER_VERIFIED = "proliferate.auth.user.verified"
VERIFICATION_REQUESTED = "proliferate.auth.user.verification_requested"
PASSWORD_RESET_REQUESTED = "proliferate.auth.user.password_reset_requested"  # noqa: S105 - a subject


def user_created(session: AsyncSession, user: User) -> None:
    add_event(
        session,
        USER_CREATED,
        ev.UserCreated(
            user_id=str(user.id),
            email=user.email,
            name=user.name,
            email_verified=user.email_verified_at is not None,
        ),
    )


def user_verified(session: AsyncSession, user_id: object) -> None:
    add_event(session, USER_VERIFIED, ev.UserVerified(user_id=str(user_id)))


def verification_requested(session: AsyncSession, user_id: object) -> None:
    add_event(session, VERIFICATION_REQUESTED, ev.UserVerificationRequested(user_id=str(user_id)))


def password_reset_requested(session: AsyncSession, user_id: object) -> None:
    add_event(session, PASSWORD_RESET_REQUESTED, ev.UserPasswordResetRequested(user_id=str(user_id)))
