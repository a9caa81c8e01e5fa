"""Builder of `proliferate.llm_proxy.spend.recorded`; its event id is derived from the request id."""

from __future__ import annotations

import uuid
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from proliferate.kit.ids import derived_id
from proliferate.kit.outbox import add_event
from proliferate.protos.events.v1 import llm_proxy_pb2
from sqlalchemy.ext.asyncio import AsyncSession

SPEND_RECORDED = "proliferate.llm_proxy.spend.recorded"
_NAMESPACE = uuid.UUID("0c4f7e0e-5a43-4a49-9d36-6f1f3f6b2a11")


def spend_event_id(request_id: uuid.UUID) -> uuid.UUID:
    """The same request always gets the same event id: a replayed finalization publishes nothing new."""
    return derived_id(_NAMESPACE, "spend.recorded", request_id)


def _stamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def spend_recorded(session: AsyncSession, record: dict[str, object]) -> None:
    """`record`: the finalized row's values (request_id, ids, models, api, status, tokens, cost, times)."""

    def text(name: str) -> str:
        value = record.get(name)
        return "" if value is None else str(value)

    def number(name: str) -> int:
        value = record.get(name)
        return int(value) if isinstance(value, int) else 0

    started = record.get("started_at")
    ended = record.get("ended_at")
    message = llm_proxy_pb2.SpendRecorded(
        request_id=text("request_id"),
        organization_id=text("organization_id"),
        session_id=text("session_id"),
        run_id=text("run_id"),
        virtual_key_id=text("virtual_key_id"),
        requested_model=text("requested_model"),
        routed_model=text("routed_model"),
        api=text("api"),
        status=text("status"),
        prompt_tokens=number("prompt_tokens"),
        completion_tokens=number("completion_tokens"),
        cache_read_tokens=number("cache_read_tokens"),
        cache_write_tokens=number("cache_write_tokens"),
        cost_micros=number("cost_micros"),
        usage_estimated=bool(record.get("usage_estimated")),
        started_at=_stamp(started if isinstance(started, datetime) else None),
        ended_at=_stamp(ended if isinstance(ended, datetime) else None),
    )
    request_id = record["request_id"]
    assert isinstance(request_id, uuid.UUID)
    add_event(session, SPEND_RECORDED, message, event_id=spend_event_id(request_id))
