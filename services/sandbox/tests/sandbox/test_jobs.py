"""The reaper, the orphan sweep, abandoned boots and usage metering (sandbox-provider.md §5.8)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from proliferate.kit.ids import uuid7
from proliferate.protos.events.v1 import sandbox_pb2 as ev
from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from proliferate.sandbox.sandbox.jobs import SandboxJobs
from sandbox_support import Harness, ensure_request


async def execute(h: Harness, sql: str, **params: object) -> list[sa.Row[object]]:
    async with h.db.engine.begin() as conn:
        result = await conn.execute(sa.text(sql), params)
        return list(result.all()) if result.returns_rows else []


async def usage_events(h: Harness, sandbox_id: str) -> list[ev.SandboxUsageRecorded]:
    rows = await execute(
        h,
        "SELECT payload FROM outbox WHERE subject = 'proliferate.sandbox.usage.recorded' ORDER BY created_at",
    )
    found = [ev.SandboxUsageRecorded.FromString(bytes(r[0])) for r in rows]
    return sorted(
        (e for e in found if e.sandbox_id == sandbox_id), key=lambda e: e.interval_start.ToDatetime()
    )


class TestReaper:
    async def test_listing_error_marks_nothing_lost(self, service: Harness, org: str) -> None:
        from e2b import ServiceBusyException

        booted = await service.call("EnsureSandbox", ensure_request(org))
        for box in service.e2b.boxes.values():
            box.state = "killed"  # gone at the provider, but the listing fails
        jobs = SandboxJobs(service.ctx)
        service.ctx.providers.get("e2b").retry_delays = (0.0, 0.0, 0.0)  # type: ignore[attr-defined]
        for _ in range(2):
            service.e2b.fail_next("list", *[ServiceBusyException("busy")] * 3)
            await execute(
                service,
                "UPDATE sandboxes SET missing_since = now() - interval '2 minutes'"
                " WHERE missing_since IS NOT NULL",
            )
            await jobs.reap()
        got = await service.call(
            "GetSandbox", pb.GetSandboxRequest(organization_id=org, sandbox_id=booted.sandbox.id)
        )
        assert got.status == "ready"

    async def test_lost_only_after_two_not_found_answers(self, service: Harness, org: str) -> None:
        booted = await service.call("EnsureSandbox", ensure_request(org))
        for box in service.e2b.boxes.values():
            box.state = "killed"
        jobs = SandboxJobs(service.ctx)
        await jobs.reap()
        got = await service.call(
            "GetSandbox", pb.GetSandboxRequest(organization_id=org, sandbox_id=booted.sandbox.id)
        )
        assert got.status == "ready"  # one answer is not enough
        await execute(service, "UPDATE sandboxes SET missing_since = now() - interval '61 seconds'")
        await jobs.reap()
        got = await service.call(
            "GetSandbox", pb.GetSandboxRequest(organization_id=org, sandbox_id=booted.sandbox.id)
        )
        assert (got.status, got.terminate_reason) == ("terminated", "lost")

    async def test_expired_sandbox_is_terminated(self, service: Harness, org: str) -> None:
        booted = await service.call("EnsureSandbox", ensure_request(org))
        await execute(service, "UPDATE sandboxes SET expires_at = now() - interval '1 second'")
        await SandboxJobs(service.ctx).reap()
        got = await service.call(
            "GetSandbox", pb.GetSandboxRequest(organization_id=org, sandbox_id=booted.sandbox.id)
        )
        assert (got.status, got.terminate_reason) == ("terminated", "expired")
        alive = await service.call(
            "CheckSandboxes", pb.CheckSandboxesRequest(organization_id=org, sandbox_ids=[booted.sandbox.id])
        )
        assert list(alive.alive_ids) == []

    async def test_a_sandbox_over_its_limits_is_terminated_limits_exceeded(
        self, service: Harness, org: str
    ) -> None:
        over = await service.call("EnsureSandbox", ensure_request(org))
        fine = await service.call("EnsureSandbox", ensure_request(org))
        provider = service.ctx.providers.get("e2b")
        asked: list[list[str]] = []

        async def over_limits(refs: list[Any]) -> dict[str, str]:
            # What the local provider answers for a home past SANDBOX_LOCAL_MAX_DISK_MB
            # (measured in tests/providers/test_local.py).
            asked.append(sorted(r.sandbox_id for r in refs))
            return {over.sandbox.id: "home is 21000 MB, over the 20480 MB limit"}

        provider.over_limits = over_limits  # type: ignore[method-assign]
        await SandboxJobs(service.ctx).reap()
        assert asked == [sorted([over.sandbox.id, fine.sandbox.id])]
        got = await service.call(
            "GetSandbox", pb.GetSandboxRequest(organization_id=org, sandbox_id=over.sandbox.id)
        )
        assert (got.status, got.terminate_reason) == ("terminated", "limits_exceeded")
        kept = await service.call(
            "GetSandbox", pb.GetSandboxRequest(organization_id=org, sandbox_id=fine.sandbox.id)
        )
        assert kept.status == "ready"
        rows = await execute(
            service, "SELECT payload FROM outbox WHERE subject = 'proliferate.sandbox.sandbox.terminated'"
        )
        terminated = [ev.SandboxTerminated.FromString(bytes(r[0])) for r in rows]
        assert [(e.sandbox_id, e.reason) for e in terminated if e.sandbox_id == over.sandbox.id] == [
            (over.sandbox.id, "limits_exceeded")
        ]

    async def test_replica_killed_mid_boot_then_ensure_after_lease_expiry(
        self, service: Harness, org: str
    ) -> None:
        session = uuid.uuid4()
        # What a replica that died mid-boot leaves: a `booting` row whose lease is stale, and a
        # provider sandbox that nothing will finish.
        half = await service.e2b.create(
            template="proliferate-sandbox",
            envs={},
            metadata=service.ctx.providers.get("e2b")._metadata("x"),
            timeout=60,  # type: ignore[attr-defined]
        )
        row_id = uuid7()
        half.box.metadata["proliferate_sandbox_id"] = str(row_id)
        await execute(
            service,
            "INSERT INTO sandboxes (id, organization_id, session_id, purpose, provider, provider_namespace,"
            " provider_sandbox_id, status, op_kind, op_id, op_expires_at, expires_at, created_at)"
            " VALUES (:id, :org, :s, 'session', 'e2b', :ns, :psid, 'booting', 'boot', :op,"
            " now() - interval '1 second',"
            " now() + interval '1 hour', now() - interval '20 minutes')",
            id=row_id, org=uuid.UUID(org), s=session, ns=service.ctx.providers.get("e2b").namespace,
            psid=half.sandbox_id, op=uuid7(),
        )  # fmt: skip
        reply = await service.call("EnsureSandbox", ensure_request(org, str(session)))
        assert reply.sandbox.status == "ready" and reply.sandbox.id != str(row_id)
        old = await execute(service, "SELECT status FROM sandboxes WHERE id = :id", id=row_id)
        assert old[0][0] == "failed"
        half.box.started_at = datetime.now(UTC) - timedelta(minutes=20)
        removed = await SandboxJobs(service.ctx).sweep_orphans()
        assert removed == 1 and half.box.state == "killed"
        live = [b for b in service.e2b.boxes.values() if b.state == "running"]
        assert len(live) == 1  # the new sandbox is untouched

    async def test_orphan_sweep_spares_young_and_live_sandboxes(self, service: Harness, org: str) -> None:
        await service.call("EnsureSandbox", ensure_request(org))
        young = await service.e2b.create(
            template="proliferate-sandbox",
            envs={},
            metadata={**service.ctx.providers.get("e2b")._metadata(str(uuid7()))},
            timeout=60,  # type: ignore[attr-defined]
        )
        assert await SandboxJobs(service.ctx).sweep_orphans() == 0
        assert young.box.state == "running"


class TestUsageMetering:
    async def test_ready_95s_then_terminated_yields_contiguous_intervals(
        self, service: Harness, org: str
    ) -> None:
        booted = await service.call("EnsureSandbox", ensure_request(org))
        sid = booted.sandbox.id
        start = datetime.now(UTC) - timedelta(seconds=95)
        await execute(
            service, "UPDATE sandboxes SET metered_through_at = :t WHERE id = :id", t=start, id=uuid.UUID(sid)
        )
        jobs = SandboxJobs(service.ctx)
        # Three ticks 30 s apart, simulated by moving the mark's origin.
        await jobs.meter()
        await jobs.meter()  # nothing new: intervals under 10 s wait
        await service.call(
            "TerminateSandbox", pb.TerminateSandboxRequest(organization_id=org, sandbox_id=sid)
        )
        events = await usage_events(service, sid)
        assert events[-1].final and not any(e.final for e in events[:-1])
        for a, b in itertools.pairwise(events):
            assert a.interval_end == b.interval_start  # contiguous, never overlapping
        total = sum(e.seconds for e in events)
        assert 94 <= total <= 96
        assert all(0 < e.seconds <= 3600 for e in events)
        assert len({e.usage_id for e in events}) == len(events)

    async def test_paused_period_yields_no_interval(self, service: Harness, org: str) -> None:
        booted = await service.call("EnsureSandbox", ensure_request(org))
        sid = uuid.UUID(booted.sandbox.id)
        await execute(
            service,
            "UPDATE sandboxes SET metered_through_at = now() - interval '40 seconds' WHERE id = :id",
            id=sid,
        )
        await service.call(
            "CaptureSnapshot",
            pb.CaptureSnapshotRequest(
                organization_id=org, sandbox_id=booted.sandbox.id, purpose=pb.CaptureSnapshotRequest.PAUSE
            ),
        )
        before = await usage_events(service, booted.sandbox.id)
        assert 39 <= sum(e.seconds for e in before) <= 41
        # An hour of pause: the metering job bills nothing for it.
        await execute(
            service, "UPDATE sandboxes SET paused_at = now() - interval '1 hour' WHERE id = :id", id=sid
        )
        await SandboxJobs(service.ctx).meter()
        assert await usage_events(service, booted.sandbox.id) == before

    async def test_lost_sandbox_is_billed_to_last_seen_alive_plus_30s(
        self, service: Harness, org: str
    ) -> None:
        booted = await service.call("EnsureSandbox", ensure_request(org))
        sid = uuid.UUID(booted.sandbox.id)
        await execute(
            service,
            "UPDATE sandboxes SET metered_through_at = now() - interval '300 seconds',"
            " last_seen_alive_at = now() - interval '200 seconds',"
            " missing_since = now() - interval '90 seconds' WHERE id = :id",
            id=sid,
        )
        for box in service.e2b.boxes.values():
            box.state = "killed"
        await SandboxJobs(service.ctx).reap()
        events = await usage_events(service, booted.sandbox.id)
        assert events[-1].final
        assert 129 <= sum(e.seconds for e in events) <= 131  # (300 - 200) + 30
