"""Lifecycle facts through the outbox (§4.4) and the consumers of other services' facts (§4.5)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import sqlalchemy as sa
from nats.aio.client import Client as NatsClient
from proliferate.kit.bus import Consumer, JetStreamPublisher, Outcome, ensure_streams
from proliferate.kit.outbox import Relay
from proliferate.kit.topology import STREAMS
from proliferate.protos.events.v1 import sandbox_pb2 as ev
from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from proliferate.sandbox.sandbox.consumers import CONSUMERS
from proliferate.sandbox.sandbox.jobs import SandboxJobs
from sandbox_support import Harness, ensure_request


class CrashAfterPublish(JetStreamPublisher):
    """Publishes, then dies before the relay can mark the rows (a relay killed mid-batch)."""

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        await super().publish(subject, payload, headers)
        raise ConnectionError("relay killed after publishing")


async def subject_count(js: Any, stream: str, subject: str) -> int:
    info = await js.stream_info(stream, subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


class TestLifecycleEvents:
    async def test_ready_paused_terminated_published_once_across_relay_restarts(
        self, service_factory: Any, nats_client: NatsClient, org: str
    ) -> None:
        h: Harness = await service_factory(roles=("grpc",))
        js = nats_client.jetstream()
        await ensure_streams(js, STREAMS["sandbox"].specs("sandbox"))
        booted = await h.call("EnsureSandbox", ensure_request(org))
        await h.call(
            "CaptureSnapshot",
            pb.CaptureSnapshotRequest(
                organization_id=org, sandbox_id=booted.sandbox.id, purpose=pb.CaptureSnapshotRequest.PAUSE
            ),
        )
        await h.call(
            "TerminateSandbox", pb.TerminateSandboxRequest(organization_id=org, sandbox_id=booted.sandbox.id)
        )
        crashing = Relay(h.db, CrashAfterPublish(js), max_backoff_seconds=0.0)
        await crashing.publish_batch()  # everything published, nothing marked
        relay = Relay(h.db, JetStreamPublisher(js))
        await relay.publish_batch()  # the restarted relay publishes again
        async with h.db.engine.begin() as conn:
            await conn.execute(sa.text("UPDATE outbox SET next_attempt_at = now()"))
        await relay.publish_batch()
        for verb in ("ready", "paused", "terminated"):
            assert (
                await subject_count(js, "PROLIFERATE_SANDBOX", f"proliferate.sandbox.sandbox.{verb}") == 1
            ), verb
        last = await js.get_last_msg("PROLIFERATE_SANDBOX", "proliferate.sandbox.sandbox.terminated")
        terminated = ev.SandboxTerminated.FromString(last.data)
        assert (terminated.sandbox_id, terminated.reason) == (booted.sandbox.id, "requested")


class FakeMeta:
    def __init__(self, delivered: int) -> None:
        self.num_delivered = delivered


class TestConsumers:
    async def _consumer(self, h: Harness, nats_client: NatsClient, durable: str) -> tuple[Consumer, Any]:
        js = nats_client.jetstream()
        spec = next(c for c in CONSUMERS if c.durable == durable)
        from proliferate.kit.topology import all_stream_specs

        await ensure_streams(js, [s for s in all_stream_specs() if s.name == spec.stream])
        consumer = Consumer("sandbox", spec, h.db, js)
        await consumer.ensure()
        return consumer, js

    async def test_session_deleted_redelivered_terminates_once_and_marks_artifacts_once(
        self, service_factory: Any, nats_client: NatsClient, org: str
    ) -> None:
        h: Harness = await service_factory(roles=("grpc",))
        booted = await h.call("EnsureSandbox", ensure_request(org))
        await h.call(
            "CaptureSnapshot", pb.CaptureSnapshotRequest(organization_id=org, sandbox_id=booted.sandbox.id)
        )
        consumer, js = await self._consumer(h, nats_client, "sandbox-gateway-sessions")
        payload = ev.GatewaySessionEndedView(organization_id=org, session_id=booted.sandbox.session_id)
        await js.publish(
            "proliferate.gateway.session.deleted",
            payload.SerializeToString(),
            headers={"Nats-Msg-Id": str(uuid.uuid4())},
        )
        sub = await js.pull_subscribe_bind(durable="sandbox-gateway-sessions", stream="PROLIFERATE_GATEWAY")
        (msg,) = await sub.fetch(1, timeout=5)
        assert (await consumer.handle_message(msg)).outcome is Outcome.ACK
        assert (await consumer.handle_message(msg)).outcome is Outcome.ACK  # the redelivery
        assert consumer.stats.handled == 1 and consumer.stats.skipped_duplicates == 1
        await SandboxJobs(h.ctx).finish_terminating()
        got = await h.call(
            "GetSandbox", pb.GetSandboxRequest(organization_id=org, sandbox_id=booted.sandbox.id)
        )
        assert (got.status, got.terminate_reason) == ("terminated", "session_ended")
        assert len(h.e2b.named("kill")) == 1
        async with h.db.engine.connect() as conn:
            statuses = list((await conn.execute(sa.text("SELECT status FROM snapshot_artifacts"))).scalars())
        assert statuses == ["deleting"]
        await sub.unsubscribe()

    async def test_organization_deleted_terminates_every_org_sandbox(
        self, service_factory: Any, nats_client: NatsClient, org: str, org_second: str
    ) -> None:
        h: Harness = await service_factory(roles=("grpc",))
        mine = await asyncio.gather(*(h.call("EnsureSandbox", ensure_request(org)) for _ in range(2)))
        other = await h.call("EnsureSandbox", ensure_request(org_second))
        consumer, js = await self._consumer(h, nats_client, "sandbox-auth-organizations")
        await js.publish(
            "proliferate.auth.organization.deleted",
            ev.AuthOrganizationDeletedView(organization_id=org).SerializeToString(),
            headers={"Nats-Msg-Id": str(uuid.uuid4())},
        )
        sub = await js.pull_subscribe_bind(durable="sandbox-auth-organizations", stream="PROLIFERATE_AUTH")
        (msg,) = await sub.fetch(1, timeout=5)
        await consumer.handle_message(msg)
        await SandboxJobs(h.ctx).finish_terminating()
        for reply in mine:
            got = await h.call(
                "GetSandbox", pb.GetSandboxRequest(organization_id=org, sandbox_id=reply.sandbox.id)
            )
            assert (got.status, got.terminate_reason) == ("terminated", "org_deleted")
        kept = await h.call(
            "GetSandbox", pb.GetSandboxRequest(organization_id=org_second, sandbox_id=other.sandbox.id)
        )
        assert kept.status == "ready"
        await sub.unsubscribe()

    async def test_repos_snapshot_deleted_marks_the_artifact_then_gc_deletes_it(
        self, service_factory: Any, nats_client: NatsClient, org: str
    ) -> None:
        from proliferate.sandbox.snapshot.gc import ArtifactGC

        h: Harness = await service_factory(roles=("grpc",))
        booted = await h.call("EnsureSandbox", ensure_request(org))
        art = (
            await h.call(
                "CaptureSnapshot",
                pb.CaptureSnapshotRequest(organization_id=org, sandbox_id=booted.sandbox.id),
            )
        ).artifact
        consumer, js = await self._consumer(h, nats_client, "sandbox-repos-snapshots")
        payload = ev.ReposSnapshotDeletedView(
            snapshot_id=str(uuid.uuid4()), organization_id=org, provider="e2b", provider_snapshot_id=art.id
        )
        await js.publish(
            "proliferate.repos.snapshot.deleted",
            payload.SerializeToString(),
            headers={"Nats-Msg-Id": str(uuid.uuid4())},
        )
        sub = await js.pull_subscribe_bind(durable="sandbox-repos-snapshots", stream="PROLIFERATE_REPOS")
        (msg,) = await sub.fetch(1, timeout=5)
        await consumer.handle_message(msg)
        assert await ArtifactGC(h.ctx).run() == 1
        assert len(h.e2b.named("delete_snapshot")) == 1 and h.e2b.snapshots == {}
        async with h.db.engine.connect() as conn:
            status = (await conn.execute(sa.text("SELECT status FROM snapshot_artifacts"))).scalar_one()
            deleted = (
                await conn.execute(
                    sa.text(
                        "SELECT count(*) FROM outbox"
                        " WHERE subject = 'proliferate.sandbox.snapshot_artifact.deleted'"
                    )
                )
            ).scalar_one()
        assert (status, deleted) == ("deleted", 1)
        await sub.unsubscribe()
