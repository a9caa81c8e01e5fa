"""Making an organization the active one of a sign-in, and saying so: gateways cache the
principal of a sign-in, so every change of its organization is published (`sign_in.updated`)."""

from __future__ import annotations

import uuid

from proliferate.auth.sign_in import events
from proliferate.auth.sign_in.repository import SignInRepository
from sqlalchemy.ext.asyncio import AsyncSession


async def activate_organization(
    session: AsyncSession, sign_in_id: uuid.UUID, user_id: uuid.UUID, organization_id: uuid.UUID
) -> None:
    await SignInRepository(session).set_active_organization(sign_in_id, organization_id)
    events.sign_in_updated(session, sign_in_id, user_id, organization_id)
