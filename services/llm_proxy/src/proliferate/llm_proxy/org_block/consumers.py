"""Billing's org pause/resume events, projected into `org_blocks` (order-safe by event time)."""

from __future__ import annotations

import uuid

from proliferate.kit.bus import Event, Handler, on
from proliferate.llm_proxy.org_block.service import apply_paused, apply_resumed, event_time
from proliferate.protos.events.v1 import billing_pb2
from sqlalchemy.ext.asyncio import AsyncSession


async def org_paused(session: AsyncSession, event: Event[billing_pb2.OrgPaused]) -> None:
    at = event_time(event.payload.paused_at.seconds, event.payload.paused_at.nanos, event.occurred_at)
    await apply_paused(session, uuid.UUID(event.payload.organization_id), event.payload.reason, at)


async def org_resumed(session: AsyncSession, event: Event[billing_pb2.OrgResumed]) -> None:
    at = event_time(event.payload.resumed_at.seconds, event.payload.resumed_at.nanos, event.occurred_at)
    await apply_resumed(session, uuid.UUID(event.payload.organization_id), at)


HANDLERS: tuple[Handler, ...] = (
    on("proliferate.billing.org.paused", billing_pb2.OrgPaused)(org_paused),
    on("proliferate.billing.org.resumed", billing_pb2.OrgResumed)(org_resumed),
)
