from __future__ import annotations

from proliferate.auth.models import Invitation
from proliferate.kit.outbox import add_event
from proliferate.protos.events.v1 import auth_pb2 as ev
from sqlalchemy.ext.asyncio import AsyncSession

INVITATION_CREATED = "proliferate.auth.invitation.created"
INVITATION_ACCEPTED = "proliferate.auth.invitation.accepted"
INVITATION_REJECTED = "proliferate.auth.invitation.rejected"
INVITATION_CANCELED = "proliferate.auth.invitation.canceled"
INVITATION_EXPIRED = "proliferate.auth.invitation.expired"


def invitation_created(session: AsyncSession, invitation: Invitation) -> None:
    add_event(
        session,
        INVITATION_CREATED,
        ev.InvitationCreated(
            invitation_id=str(invitation.id),
            organization_id=str(invitation.organization_id),
            email=invitation.email,
            role=invitation.role,
            inviter_user_id=str(invitation.inviter_user_id or ""),
        ),
    )


def invitation_accepted(session: AsyncSession, invitation: Invitation, user_id: object) -> None:
    add_event(
        session,
        INVITATION_ACCEPTED,
        ev.InvitationAccepted(
            invitation_id=str(invitation.id),
            organization_id=str(invitation.organization_id),
            user_id=str(user_id),
        ),
    )


def invitation_rejected(session: AsyncSession, invitation: Invitation) -> None:
    add_event(
        session,
        INVITATION_REJECTED,
        ev.InvitationRejected(
            invitation_id=str(invitation.id), organization_id=str(invitation.organization_id)
        ),
    )


def invitation_canceled(session: AsyncSession, invitation: Invitation) -> None:
    add_event(
        session,
        INVITATION_CANCELED,
        ev.InvitationCanceled(
            invitation_id=str(invitation.id), organization_id=str(invitation.organization_id)
        ),
    )


def invitation_expired(session: AsyncSession, invitation_id: object, organization_id: object) -> None:
    add_event(
        session,
        INVITATION_EXPIRED,
        ev.InvitationExpired(invitation_id=str(invitation_id), organization_id=str(organization_id)),
    )
