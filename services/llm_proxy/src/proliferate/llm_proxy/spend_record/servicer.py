"""gRPC `GetSpend`: a thin adapter over the spend service."""

from __future__ import annotations

from datetime import UTC as _UTC
from typing import Any

from proliferate.kit.db import Database
from proliferate.llm_proxy.spend_record import service
from proliferate.llm_proxy.virtual_key.serial import optional_uuid, parse_uuid
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2 as pb


def _totals(rows: list[service.SpendTotals]) -> pb.SpendTotals:
    return pb.SpendTotals(
        cost_micros=sum(r.cost_micros for r in rows),
        prompt_tokens=sum(r.prompt_tokens for r in rows),
        completion_tokens=sum(r.completion_tokens for r in rows),
        cache_read_tokens=sum(r.cache_read_tokens for r in rows),
        cache_write_tokens=sum(r.cache_write_tokens for r in rows),
        request_count=sum(r.request_count for r in rows),
    )


class SpendServicer:
    db: Database

    async def GetSpend(self, request: pb.GetSpendRequest, context: Any) -> pb.SpendSummary:
        organization_id = parse_uuid(request.organization_id, "organization_id")
        session_id = optional_uuid(request.session_id, "session_id")
        run_id = optional_uuid(request.run_id, "run_id")
        since = request.since.ToDatetime(tzinfo=_UTC) if request.HasField("since") else None
        until = request.until.ToDatetime(tzinfo=_UTC) if request.HasField("until") else None
        async with self.db.unit_of_work() as session:
            rows = await service.get_spend(
                session, organization_id, session_id=session_id, run_id=run_id, since=since, until=until
            )
        return pb.SpendSummary(
            totals=_totals(rows),
            by_model=[pb.ModelSpend(model=r.model, totals=_totals([r])) for r in rows],
        )
