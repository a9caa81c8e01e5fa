"""Key lifecycle follows session, run and org lifecycles: the events that revoke keys or raise budgets.

Every handler is a conditional update (`WHERE status = 'active'`, `GREATEST(...)`), so a
redelivered or reordered event changes nothing twice.
"""

from __future__ import annotations

import uuid
from typing import Any

from proliferate.kit.bus import ConsumerSpec, Event, Handler, on
from proliferate.llm_proxy.virtual_key.service import RevokeTarget, VirtualKeyService
from proliferate.protos.events.v1 import auth_pb2, automations_pb2, billing_pb2, gateway_pb2
from sqlalchemy.ext.asyncio import AsyncSession

SESSION_REASONS = {
    "proliferate.gateway.session.paused": ("session_paused", gateway_pb2.SessionPaused),
    "proliferate.gateway.session.completed": ("session_completed", gateway_pb2.SessionCompleted),
    "proliferate.gateway.session.failed": ("session_failed", gateway_pb2.SessionFailed),
}
RUN_TERMINAL = ("succeeded", "failed", "needs_human", "timed_out", "canceled", "skipped")


def session_handlers(keys: VirtualKeyService) -> tuple[Handler, ...]:
    def revoke_session(reason: str) -> Any:
        async def handle(session: AsyncSession, event: Event[Any]) -> None:
            target = RevokeTarget(session_id=uuid.UUID(event.payload.session_id))
            await keys.revoke(session, uuid.UUID(event.payload.organization_id), target, reason)

        return handle

    return tuple(
        on(subject, message)(revoke_session(reason)) for subject, (reason, message) in SESSION_REASONS.items()
    )


def run_handlers(keys: VirtualKeyService) -> tuple[Handler, ...]:
    async def revoke_run(session: AsyncSession, event: Event[automations_pb2.RunChanged]) -> None:
        target = RevokeTarget(run_id=uuid.UUID(event.payload.run_id))
        await keys.revoke(session, uuid.UUID(event.payload.organization_id), target, "run_finished")

    return tuple(
        on(f"proliferate.automations.run.{status}", automations_pb2.RunChanged)(revoke_run)
        for status in RUN_TERMINAL
    )


def organization_handlers(keys: VirtualKeyService) -> tuple[Handler, ...]:
    async def revoke_organization(session: AsyncSession, event: Event[auth_pb2.OrganizationDeleted]) -> None:
        await keys.revoke_organization(session, uuid.UUID(event.payload.organization_id))

    return (on("proliferate.auth.organization.deleted", auth_pb2.OrganizationDeleted)(revoke_organization),)


def credit_handler(keys: VirtualKeyService) -> Handler:
    async def raise_budgets(session: AsyncSession, event: Event[billing_pb2.AccountCredited]) -> None:
        await keys.raise_budgets(
            session, uuid.UUID(event.payload.organization_id), event.payload.llm_budget_micros
        )

    return on("proliferate.billing.account.credited", billing_pb2.AccountCredited)(raise_budgets)


def consumers(keys: VirtualKeyService) -> list[ConsumerSpec]:
    """The durable consumers of key lifecycle (the billing one is shared with org blocks: see worker)."""
    return [
        ConsumerSpec("llm-proxy-gateway-sessions", "PROLIFERATE_GATEWAY", session_handlers(keys)),
        ConsumerSpec("llm-proxy-automations-runs", "PROLIFERATE_AUTOMATIONS", run_handlers(keys)),
        ConsumerSpec("llm-proxy-auth-organizations", "PROLIFERATE_AUTH", organization_handlers(keys)),
    ]
