from __future__ import annotations

from collections.abc import Sequence

from proliferate.auth.models import Organization
from proliferate.kit.outbox import add_event
from proliferate.protos.events.v1 import auth_pb2 as ev
from sqlalchemy.ext.asyncio import AsyncSession

ORGANIZATION_CREATED = "proliferate.auth.organization.created"
ORGANIZATION_UPDATED = "proliferate.auth.organization.updated"


def organization_created(session: AsyncSession, org: Organization) -> None:
    add_event(
        session,
        ORGANIZATION_CREATED,
        ev.OrganizationCreated(
            organization_id=str(org.id),
            name=org.name,
            slug=org.slug,
            is_personal=org.is_personal,
            created_by=str(org.created_by or ""),
        ),
    )


def organization_updated(session: AsyncSession, org: Organization, changed: Sequence[str]) -> None:
    add_event(
        session,
        ORGANIZATION_UPDATED,
        ev.OrganizationUpdated(
            organization_id=str(org.id), changed_fields=list(changed), name=org.name, slug=org.slug
        ),
    )
