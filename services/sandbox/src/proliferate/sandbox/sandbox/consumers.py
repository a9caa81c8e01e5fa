"""NATS handlers of the sandbox service (§4.5), idempotent by event id (kit.bus).

Each handler only records intent in the database, in the consumer's transaction: the live
sandbox goes to `terminating` (or gets a deferred terminate under a lease) and artifacts to
`deleting`. Provider calls happen after commit (the terminate queue below) or in the
reaper/GC, so a redelivery never calls a provider twice for one fact.
"""

from __future__ import annotations

import uuid
from typing import Any

from proliferate.kit.bus import ConsumerSpec, Event, on
from proliferate.kit.logs import get_logger
from proliferate.protos.events.v1 import sandbox_pb2 as ev
from proliferate.sandbox.models import Sandbox
from proliferate.sandbox.sandbox import lifecycle
from proliferate.sandbox.sandbox.repository import SandboxRepository
from proliferate.sandbox.sandbox.terminate import lease_held
from proliferate.sandbox.snapshot.repository import ArtifactRepository
from sqlalchemy.ext.asyncio import AsyncSession

log = get_logger("proliferate.sandbox.consumers")


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def _retire(session: AsyncSession, row: Sandbox, reason: str) -> None:
    repo = SandboxRepository(session)
    if lease_held(row) or row.status == "provisioning":
        from datetime import UTC, datetime

        await repo.update_where(
            row.id,
            terminate_requested_at=row.terminate_requested_at or datetime.now(UTC),
            terminate_reason=reason,
        )
        return
    await lifecycle.to_terminating(session, row, reason)


async def session_ended(session: AsyncSession, event: Event[Any]) -> None:
    org, sid = _uuid(event.payload.organization_id), _uuid(event.payload.session_id)
    if org is None or sid is None:
        log.warning("sandbox.session_event_without_ids", subject=event.subject, event_id=str(event.id))
        return
    row = await SandboxRepository(session).live_for_session(org, sid, for_update=True)
    if row is not None:
        await _retire(session, row, "session_ended")
    if event.subject.endswith(".deleted"):
        await ArtifactRepository(session).mark_deleting_for_session(org, sid)


async def organization_deleted(session: AsyncSession, event: Event[Any]) -> None:
    org = _uuid(event.payload.organization_id)
    if org is None:
        return
    for row in await SandboxRepository(session).for_organization_live(org):
        if row.status != "terminating":
            await _retire(session, row, "org_deleted")
    await ArtifactRepository(session).mark_deleting_for_organization(org)


async def snapshot_deleted(session: AsyncSession, event: Event[Any]) -> None:
    art_id, org = _uuid(event.payload.provider_snapshot_id), _uuid(event.payload.organization_id)
    if art_id is None:
        return
    repo = ArtifactRepository(session)
    art = await repo.get(org, art_id) if org is not None else await repo.get_unscoped(art_id)
    if art is not None and art.kind != "base":
        await repo.transition(art.id, ("available", "expired"), "deleting")


CONSUMERS = [
    ConsumerSpec(
        "sandbox-gateway-sessions",
        "PROLIFERATE_GATEWAY",
        (
            on("proliferate.gateway.session.completed", ev.GatewaySessionEndedView)(session_ended),
            on("proliferate.gateway.session.failed", ev.GatewaySessionEndedView)(session_ended),
            on("proliferate.gateway.session.deleted", ev.GatewaySessionEndedView)(session_ended),
        ),
    ),
    ConsumerSpec(
        "sandbox-auth-organizations",
        "PROLIFERATE_AUTH",
        (on("proliferate.auth.organization.deleted", ev.AuthOrganizationDeletedView)(organization_deleted),),
    ),
    ConsumerSpec(
        "sandbox-repos-snapshots",
        "PROLIFERATE_REPOS",
        (on("proliferate.repos.snapshot.deleted", ev.ReposSnapshotDeletedView)(snapshot_deleted),),
    ),
]
