"""`usage.recorded` intervals (sandbox-provider.md §5.8, billing.md §5.5).

Per sandbox the intervals are contiguous and never overlap: each one starts at
`metered_through_at` and the mark advances to its end in the same transaction as the
event. Non-final intervals are whole seconds (the mark advances by whole seconds), at
least 10 s and at most 3600 s; the final one closes the sandbox's metering.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from proliferate.kit.ids import derived_id
from proliferate.kit.outbox import add_event
from proliferate.protos.events.v1 import sandbox_pb2 as ev
from proliferate.sandbox.models import Sandbox
from proliferate.sandbox.sandbox.events import timestamp
from sqlalchemy.ext.asyncio import AsyncSession

SUBJECT = "proliferate.sandbox.usage.recorded"
MIN_INTERVAL_S = 10
MAX_INTERVAL_S = 3600
LOST_GRACE_S = 30
NEVER_SEEN_GRACE_S = 5


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _emit(
    session: AsyncSession, row: Sandbox, start: datetime, end: datetime, seconds: int, final: bool
) -> None:
    usage_id = f"{row.id}:{_ms(start)}:{'final' if final else _ms(end)}"
    message = ev.SandboxUsageRecorded(
        usage_id=usage_id,
        organization_id=str(row.organization_id or ""),
        session_id=str(row.session_id or ""),
        run_id=str(row.run_id or ""),
        sandbox_id=str(row.id),
        provider=row.provider,
        interval_start=timestamp(start),
        interval_end=timestamp(end),
        seconds=seconds,
        final=final,
    )
    add_event(session, SUBJECT, message, event_id=derived_id("proliferate.sandbox.usage", usage_id))


def meter_until(session: AsyncSession, row: Sandbox, now: datetime) -> datetime | None:
    """Emit the whole-second intervals of `row` up to `now`; the new mark (None: nothing due).

    Intervals under 10 s wait for the next tick; longer gaps are split into ≤ 3600 s pieces.
    The caller stores the returned mark on the row in the same transaction.
    """
    if row.purpose != "session" or row.metered_through_at is None:
        return None
    start = row.metered_through_at
    elapsed = int((now - start).total_seconds())
    if elapsed < MIN_INTERVAL_S:
        return None
    while elapsed >= MIN_INTERVAL_S:
        piece = min(elapsed, MAX_INTERVAL_S)
        end = start + timedelta(seconds=piece)
        _emit(session, row, start, end, piece, final=False)
        start, elapsed = end, elapsed - piece
    return start


def meter_pause(session: AsyncSession, row: Sandbox, paused_at: datetime) -> datetime | None:
    """Entering `paused`: bill up to `paused_at`; the new mark for the row."""
    return _meter_tail(session, row, paused_at, final=False)


def meter_final(session: AsyncSession, row: Sandbox, end: datetime) -> datetime | None:
    """A terminal transition: the last interval, `final`, from the mark to `end`."""
    return _meter_tail(session, row, end, final=True)


def lost_end(row: Sandbox, now: datetime) -> datetime:
    """Where a lost sandbox's metering ends: last seen alive + 30 s (+ 5 s if never seen)."""
    if row.last_seen_alive_at is not None:
        end = row.last_seen_alive_at + timedelta(seconds=LOST_GRACE_S)
    else:
        base = row.metered_through_at or row.created_at
        end = base + timedelta(seconds=NEVER_SEEN_GRACE_S)
    return min(end, now)


def _meter_tail(session: AsyncSession, row: Sandbox, end: datetime, *, final: bool) -> datetime | None:
    start = row.metered_through_at
    if start is None or row.purpose != "session":
        return start
    if end < start:
        end = start
    # Whole pieces of ≤ 3600 s first, then the remainder (rounded up) as the closing piece.
    total = (end - start).total_seconds()
    while total > MAX_INTERVAL_S:
        piece_end = start + timedelta(seconds=MAX_INTERVAL_S)
        _emit(session, row, start, piece_end, MAX_INTERVAL_S, final=False)
        start, total = piece_end, total - MAX_INTERVAL_S
    if total <= 0 and not final:
        return end
    _emit(session, row, start, end, max(1, math.ceil(total - 1e-6)), final=final)
    return end
