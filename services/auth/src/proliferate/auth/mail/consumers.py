"""The `auth-mailer` durable consumer (auth.md §4.3): it makes each link token itself and
stores only its hash, so tokens never travel on the bus. One mail per event (processed-event
record); a failed send is redelivered (5 deliveries: 10 s, 1 min, 5 min, 30 min) and then
dead-lettered, and an invitation whose mail failed stays valid."""

from __future__ import annotations

import uuid

from proliferate.auth import credentials
from proliferate.auth.context import AuthContext
from proliferate.auth.invitation.events import INVITATION_CREATED
from proliferate.auth.invitation.repository import InvitationRepository
from proliferate.auth.mail.mailer import Mail
from proliferate.auth.organization.repository import OrganizationRepository
from proliferate.auth.user import service as user_service
from proliferate.auth.user.events import PASSWORD_RESET_REQUESTED, USER_CREATED, VERIFICATION_REQUESTED
from proliferate.auth.user.repository import UserRepository
from proliferate.kit.bus import ConsumerSpec, Event, on
from proliferate.protos.events.v1 import auth_pb2 as ev
from sqlalchemy.ext.asyncio import AsyncSession

DURABLE = "auth-mailer"
STREAM = "PROLIFERATE_AUTH"


class MailConsumers:
    def __init__(self, ctx: AuthContext) -> None:
        self.ctx = ctx

    async def invitation_created(self, session: AsyncSession, event: Event[ev.InvitationCreated]) -> None:
        repo = InvitationRepository(session)
        invitation = await repo.get_by_id(uuid.UUID(event.payload.invitation_id))
        if invitation is None or invitation.status != "pending":
            return  # answered or canceled before the mail went out: nothing to invite to
        token = credentials.new_token()
        await repo.set_token_hash_if_pending(invitation.id, credentials.hash_token(token))
        org = await OrganizationRepository(session).get(invitation.organization_id)
        inviter = (
            await UserRepository(session).get(invitation.inviter_user_id)
            if invitation.inviter_user_id
            else None
        )
        if org is None:
            return
        who = inviter.name if inviter else "Someone"
        link = self.ctx.app_link(f"/invite/{token}")
        await self.ctx.mailer.send(
            Mail(
                to=invitation.email,
                kind="invitation",
                subject=f"{who} invited you to {org.name} on Proliferate",
                body=f"{who} invited you to join {org.name} as {invitation.role}.\n\n"
                f"Accept within 7 days: {link}\n",
                link=link,
            )
        )

    async def user_created(self, session: AsyncSession, event: Event[ev.UserCreated]) -> None:
        if self.ctx.require_email_verification and not event.payload.email_verified:
            await self._send_verification(session, uuid.UUID(event.payload.user_id))

    async def verification_requested(
        self, session: AsyncSession, event: Event[ev.UserVerificationRequested]
    ) -> None:
        await self._send_verification(session, uuid.UUID(event.payload.user_id))

    async def _send_verification(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        user = await UserRepository(session).get(user_id)
        if user is None or user.email_verified_at is not None:
            return
        token = await user_service.new_verification_link(session, self.ctx.clock, user.id)
        link = self.ctx.app_link(f"/verify-email?token={token}")
        await self.ctx.mailer.send(
            Mail(
                to=user.email,
                kind="verification",
                subject="Verify your email for Proliferate",
                body=f"Confirm your email address within 24 hours: {link}\n",
                link=link,
            )
        )

    async def password_reset_requested(
        self, session: AsyncSession, event: Event[ev.UserPasswordResetRequested]
    ) -> None:
        user = await UserRepository(session).get(uuid.UUID(event.payload.user_id))
        if user is None:
            return
        token = await user_service.new_password_reset_link(session, self.ctx.clock, user.id)
        link = self.ctx.app_link(f"/reset-password?token={token}")
        await self.ctx.mailer.send(
            Mail(
                to=user.email,
                kind="password_reset",
                subject="Reset your Proliferate password",
                body=f"Choose a new password within 1 hour: {link}\n"
                "If you did not ask for this, ignore this mail.\n",
                link=link,
            )
        )


def mailer_consumer(ctx: AuthContext) -> ConsumerSpec:
    handlers = MailConsumers(ctx)
    return ConsumerSpec(
        DURABLE,
        STREAM,
        (
            on(INVITATION_CREATED, ev.InvitationCreated)(handlers.invitation_created),
            on(USER_CREATED, ev.UserCreated)(handlers.user_created),
            on(VERIFICATION_REQUESTED, ev.UserVerificationRequested)(handlers.verification_requested),
            on(PASSWORD_RESET_REQUESTED, ev.UserPasswordResetRequested)(handlers.password_reset_requested),
        ),
        max_deliveries=5,
        backoff_seconds=(10.0, 60.0, 300.0, 1800.0),
        batch=1,  # mails leave the database: one message per transaction
        concurrency=4,
    )
