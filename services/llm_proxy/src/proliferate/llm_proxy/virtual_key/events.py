"""Builders of the virtual key facts, staged in the caller's unit of work."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from proliferate.kit.outbox import add_event
from proliferate.llm_proxy.models import VirtualKey
from proliferate.protos.events.v1 import llm_proxy_pb2
from sqlalchemy.ext.asyncio import AsyncSession

ISSUED = "proliferate.llm_proxy.virtual_key.issued"
REVOKED = "proliferate.llm_proxy.virtual_key.revoked"


def virtual_key_issued(session: AsyncSession, key: VirtualKey) -> None:
    expires_at = Timestamp()
    expires_at.FromDatetime(key.expires_at)
    message = llm_proxy_pb2.VirtualKeyIssued(
        virtual_key_id=str(key.id),
        organization_id=str(key.organization_id),
        scope=key.scope,
        session_id=str(key.session_id or ""),
        run_id=str(key.run_id or ""),
        key_prefix=key.key_prefix,
        expires_at=expires_at,
    )
    if key.max_budget_micros is not None:
        message.max_budget_micros = key.max_budget_micros
    add_event(session, ISSUED, message)


def virtual_key_revoked(session: AsyncSession, row: Any, reason: str) -> None:
    """`row` carries id, organization_id and session_id (a RETURNING row)."""
    add_event(
        session,
        REVOKED,
        llm_proxy_pb2.VirtualKeyRevoked(
            virtual_key_id=str(row.id),
            organization_id=str(row.organization_id),
            session_id=str(row.session_id or ""),
            reason=reason,
        ),
    )
