from __future__ import annotations

from proliferate.auth.models import ApiKey
from proliferate.kit.outbox import add_event
from proliferate.protos.events.v1 import auth_pb2 as ev
from sqlalchemy.ext.asyncio import AsyncSession

API_KEY_CREATED = "proliferate.auth.api_key.created"
API_KEY_REVOKED = "proliferate.auth.api_key.revoked"


def api_key_created(session: AsyncSession, key: ApiKey) -> None:
    add_event(
        session,
        API_KEY_CREATED,
        ev.ApiKeyCreated(
            api_key_id=str(key.id), organization_id=str(key.organization_id), user_id=str(key.user_id)
        ),
    )


def api_key_revoked(session: AsyncSession, key: ApiKey) -> None:
    add_event(
        session,
        API_KEY_REVOKED,
        ev.ApiKeyRevoked(
            api_key_id=str(key.id), organization_id=str(key.organization_id), user_id=str(key.user_id)
        ),
    )
