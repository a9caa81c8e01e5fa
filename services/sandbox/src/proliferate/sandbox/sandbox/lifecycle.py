"""The sandbox state machine (§3.1): every transition is one conditional update, its event
and its usage interval, in the caller's unit of work. A transition that does not match
(someone else moved the row) returns None and changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from proliferate.sandbox.models import Sandbox
from proliferate.sandbox.models.sandbox import LIVE_STATUSES
from proliferate.sandbox.redaction import redact
from proliferate.sandbox.sandbox import events
from proliferate.sandbox.sandbox.repository import SandboxRepository
from proliferate.sandbox.usage import metering
from sqlalchemy.ext.asyncio import AsyncSession


def utcnow() -> datetime:
    return datetime.now(UTC)


async def to_booting(
    session: AsyncSession, sandbox_id: uuid.UUID, op_id: uuid.UUID, **values: Any
) -> Sandbox | None:
    now = utcnow()
    return await SandboxRepository(session).update_where(
        sandbox_id,
        Sandbox.status == "provisioning",
        Sandbox.op_id == op_id,
        status="booting",
        metered_through_at=now,
        **values,
    )


async def to_ready(
    session: AsyncSession,
    sandbox_id: uuid.UUID,
    op_id: uuid.UUID,
    *,
    resumed: bool,
    from_statuses: tuple[str, ...] = ("booting",),
    **values: Any,
) -> Sandbox | None:
    now = utcnow()
    extra: dict[str, Any] = {"ready_at": now, "op_kind": None, "op_id": None, "op_expires_at": None}
    if resumed:
        extra["metered_through_at"] = now
        extra["paused_at"] = None
    row = await SandboxRepository(session).update_where(
        sandbox_id,
        Sandbox.status.in_(from_statuses),
        Sandbox.op_id == op_id,
        status="ready",
        **extra,
        **values,
    )
    if row is not None:
        events.sandbox_ready(session, row, resumed=resumed)
    return row


async def to_paused(session: AsyncSession, row: Sandbox) -> Sandbox | None:
    now = utcnow()
    mark = metering.meter_pause(session, row, now)
    updated = await SandboxRepository(session).transition(
        row.id, ("ready",), "paused", paused_at=now, metered_through_at=mark
    )
    if updated is not None:
        events.sandbox_paused(session, updated)
    return updated


async def to_failed(
    session: AsyncSession, row: Sandbox, *, code: str, step: str, message: str
) -> Sandbox | None:
    now = utcnow()
    mark = metering.meter_final(session, row, now)
    updated = await SandboxRepository(session).transition(
        row.id,
        ("provisioning", "booting"),
        "failed",
        error_code=code,
        error_message=redact(message),
        terminate_reason="boot_failed",
        terminated_at=now,
        metered_through_at=mark,
        op_kind=None,
        op_id=None,
        op_expires_at=None,
    )
    if updated is not None:
        events.sandbox_failed(session, updated, step=step)
    return updated


async def to_terminating(session: AsyncSession, row: Sandbox, reason: str) -> Sandbox | None:
    """Live → terminating; the usage of a running sandbox ends here."""
    now = utcnow()
    mark = metering.meter_final(session, row, now) if row.status in ("booting", "ready") else None
    values: dict[str, Any] = {"terminate_reason": row.terminate_reason or reason}
    if mark is not None:
        values["metered_through_at"] = mark
    return await SandboxRepository(session).transition(
        row.id,
        (*LIVE_STATUSES,),
        "terminating",
        terminate_requested_at=row.terminate_requested_at or now,
        **values,
    )


async def to_terminated(session: AsyncSession, row: Sandbox, *, reason: str | None = None) -> Sandbox | None:
    """terminating → terminated (provider confirmed gone)."""
    now = utcnow()
    updated = await SandboxRepository(session).transition(
        row.id,
        ("terminating",),
        "terminated",
        terminated_at=now,
        terminate_reason=row.terminate_reason or reason or "requested",
        op_kind=None,
        op_id=None,
        op_expires_at=None,
    )
    if updated is not None:
        events.sandbox_terminated(session, updated)
    return updated


async def to_lost(session: AsyncSession, row: Sandbox) -> Sandbox | None:
    """ready/paused → terminated(lost): billed only to last seen alive + 30 s."""
    now = utcnow()
    mark = None
    if row.status == "ready":
        mark = metering.meter_final(session, row, metering.lost_end(row, now))
    updated = await SandboxRepository(session).transition(
        row.id,
        ("ready", "paused", "booting"),
        "terminated",
        terminated_at=now,
        terminate_reason="lost",
        metered_through_at=mark if mark is not None else row.metered_through_at,
        op_kind=None,
        op_id=None,
        op_expires_at=None,
    )
    if updated is not None:
        events.sandbox_terminated(session, updated)
    return updated


async def record_boot_report(session: AsyncSession, sandbox_id: uuid.UUID, report: dict[str, Any]) -> None:
    await SandboxRepository(session).update_where(sandbox_id, boot_report=report)
