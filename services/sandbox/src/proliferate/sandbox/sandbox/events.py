"""Builders of the sandbox lifecycle facts (§4.4), staged in the caller's unit of work.

Event ids are derived from (sandbox, transition, time), so staging the same transition
twice is a no-op and a re-published row carries the same Nats-Msg-Id.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from proliferate.kit.ids import derived_id
from proliferate.kit.outbox import add_event
from proliferate.protos.events.v1 import sandbox_pb2 as ev
from proliferate.sandbox.models import Sandbox
from sqlalchemy.ext.asyncio import AsyncSession

SUBJECT_READY = "proliferate.sandbox.sandbox.ready"
SUBJECT_PAUSED = "proliferate.sandbox.sandbox.paused"
SUBJECT_TERMINATED = "proliferate.sandbox.sandbox.terminated"
SUBJECT_FAILED = "proliferate.sandbox.sandbox.failed"
_NAMESPACE = "proliferate.sandbox.sandbox"


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def ts(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _ids(row: Sandbox) -> dict[str, str]:
    return {
        "organization_id": str(row.organization_id or ""),
        "session_id": str(row.session_id or ""),
        "run_id": str(row.run_id or ""),
        "sandbox_id": str(row.id),
        "provider": row.provider,
    }


def sandbox_ready(session: AsyncSession, row: Sandbox, *, resumed: bool) -> None:
    assert row.ready_at is not None
    message = ev.SandboxReady(
        **_ids(row),
        resumed=resumed,
        restore_outcome=row.restore_outcome or "",
        ready_at=timestamp(row.ready_at),
    )
    add_event(session, SUBJECT_READY, message, event_id=derived_id(_NAMESPACE, row.id, "ready", row.ready_at))


def sandbox_paused(session: AsyncSession, row: Sandbox) -> None:
    assert row.paused_at is not None
    message = ev.SandboxPaused(**_ids(row), paused_at=timestamp(row.paused_at))
    add_event(
        session, SUBJECT_PAUSED, message, event_id=derived_id(_NAMESPACE, row.id, "paused", row.paused_at)
    )


def sandbox_terminated(session: AsyncSession, row: Sandbox) -> None:
    message = ev.SandboxTerminated(
        **_ids(row), reason=row.terminate_reason or "requested", terminated_at=timestamp(row.terminated_at)
    )
    add_event(session, SUBJECT_TERMINATED, message, event_id=derived_id(_NAMESPACE, row.id, "terminated"))


def sandbox_failed(session: AsyncSession, row: Sandbox, *, step: str) -> None:
    message = ev.SandboxFailed(
        **_ids(row), error_code=row.error_code or "boot_failed", step=step, message=row.error_message or ""
    )
    add_event(session, SUBJECT_FAILED, message, event_id=derived_id(_NAMESPACE, row.id, "failed"))
