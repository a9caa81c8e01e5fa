from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa
from proliferate.kit.errors import RemoteError
from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from sandbox_support import Harness, ensure_request

SECRET = pb.SecretFile(
    workspace_path="app", file_path=".env.local", content=b"API_TOKEN=top-secret-value-123"
)
SECRET_PATH = "/home/user/workspace/app/.env.local"
ENV_PATH = "/tmp/proliferate/session.env"
CREDS_PATH = "/tmp/proliferate/git-credentials.json"
C = pb.CaptureSnapshotRequest


async def boot(h: Harness, org: str, **overrides: object) -> pb.EnsureSandboxResponse:
    reply: pb.EnsureSandboxResponse = await h.call(
        "EnsureSandbox", ensure_request(org, secret_files=[SECRET], **overrides)
    )
    return reply


def capture(org: str, sandbox_id: str, **kw: object) -> pb.CaptureSnapshotRequest:
    return pb.CaptureSnapshotRequest(organization_id=org, sandbox_id=sandbox_id, **kw)


async def artifact_statuses(h: Harness) -> list[str]:
    async with h.db.engine.connect() as conn:
        return list((await conn.execute(sa.text("SELECT status FROM snapshot_artifacts"))).scalars())


class TestCaptureSnapshot:
    async def test_save_strict_reapply_scrubs_the_copy_and_restores_the_source(
        self, service: Harness, org: str
    ) -> None:
        booted = await boot(service, org)
        box = next(iter(service.e2b.boxes.values()))
        reply = await service.call(
            "CaptureSnapshot", capture(org, booted.sandbox.id, purpose=C.SAVE, scrub=C.STRICT, reapply=True)
        )
        art = reply.artifact
        assert (art.kind, art.scrubbed, reply.sandbox_retained) == ("filesystem", True, False)
        assert [c.commit_sha for c in art.repo_commits] == ["0123456789abcdef0123456789abcdef01234567"]
        copy = service.e2b.snapshots[
            service.e2b.named("create_snapshot") and next(iter(service.e2b.snapshots))
        ]
        for path in (SECRET_PATH, ENV_PATH, CREDS_PATH):
            assert path not in copy, path
            assert path in box.files, path  # written back right after the capture
        assert box.files[SECRET_PATH] == (SECRET.content, 0o600)

    async def test_strict_scrub_failure_fails_the_capture_and_writes_back(
        self, service: Harness, org: str
    ) -> None:
        from e2b import SandboxException

        booted = await boot(service, org)
        box = next(iter(service.e2b.boxes.values()))
        service.e2b.fail_next("run", *[SandboxException("disk error")] * 0)
        # The removal of the scrubbed files fails (after they were read and held).
        original = box.run

        def failing(argv: list[str]) -> tuple[int, str, str]:
            if argv[:3] == ["rm", "-f", "--"]:
                for path in argv[3:4]:
                    box.files.pop(path, None)  # one file removed, then the command fails
                return 1, "", "rm: cannot remove: Read-only file system"
            return original(argv)

        box.run = failing  # type: ignore[method-assign]
        with pytest.raises(RemoteError) as err:
            await service.call(
                "CaptureSnapshot", capture(org, booted.sandbox.id, purpose=C.SAVE, scrub=C.STRICT)
            )
        assert err.value.code == "snapshot_failed"
        assert await artifact_statuses(service) == ["failed"]
        assert service.e2b.named("create_snapshot") == []
        assert SECRET_PATH in box.files and ENV_PATH in box.files  # held files written back

    async def test_best_effort_scrub_failure_marks_unscrubbed(self, service: Harness, org: str) -> None:
        booted = await boot(service, org)
        box = next(iter(service.e2b.boxes.values()))
        original = box.run
        box.run = lambda argv: (1, "", "nope") if argv[:2] == ["rm", "-f"] else original(argv)  # type: ignore[method-assign]
        reply = await service.call(
            "CaptureSnapshot", capture(org, booted.sandbox.id, purpose=C.SAVE, scrub=C.BEST_EFFORT)
        )
        assert reply.artifact.scrubbed is False

    async def test_pause_on_e2b_is_a_retained_pause_artifact(self, service: Harness, org: str) -> None:
        booted = await boot(service, org)
        reply = await service.call(
            "CaptureSnapshot", capture(org, booted.sandbox.id, purpose=C.PAUSE, scrub=C.BEST_EFFORT)
        )
        assert (reply.artifact.kind, reply.sandbox_retained) == ("pause", True)
        got = await service.call(
            "GetSandbox", pb.GetSandboxRequest(organization_id=org, sandbox_id=booted.sandbox.id)
        )
        assert got.status == "paused"
        # Resume: the next ensure of the session resumes the same provider sandbox.
        resumed = await service.call("EnsureSandbox", ensure_request(org, booted.sandbox.session_id))
        assert (
            resumed.resumed and resumed.sandbox.id == booted.sandbox.id and resumed.sandbox.status == "ready"
        )
        assert len(service.e2b.named("create")) == 1
        box = next(iter(service.e2b.boxes.values()))
        assert box.state == "running" and ENV_PATH in box.files

    async def test_migrate_on_e2b_is_filesystem(self, service: Harness, org: str) -> None:
        booted = await boot(service, org)
        reply = await service.call(
            "CaptureSnapshot",
            capture(org, booted.sandbox.id, purpose=C.MIGRATE, scrub=C.BEST_EFFORT, reapply=True),
        )
        assert (reply.artifact.kind, reply.sandbox_retained) == ("filesystem", False)

    async def test_pause_on_modal_is_memory_not_retained(self, service: Harness, org: str) -> None:
        booted = await boot(service, org, provider="modal")
        reply = await service.call(
            "CaptureSnapshot", capture(org, booted.sandbox.id, purpose=C.PAUSE, scrub=C.BEST_EFFORT)
        )
        assert (reply.artifact.kind, reply.sandbox_retained) == ("memory", False)
        got = await service.call(
            "GetSandbox", pb.GetSandboxRequest(organization_id=org, sandbox_id=booted.sandbox.id)
        )
        assert got.status == "ready"

    async def test_concurrent_capture_is_aborted_and_idempotency_key_replays(
        self, service: Harness, org: str
    ) -> None:
        booted = await boot(service, org)
        gate = asyncio.Event()
        real = service.e2b.create_snapshot

        async def slow(sandbox: object) -> str:
            await gate.wait()
            return await real(sandbox)

        service.e2b.create_snapshot = slow  # type: ignore[method-assign]
        first = asyncio.create_task(
            service.call("CaptureSnapshot", capture(org, booted.sandbox.id, idempotency_key="k1"))
        )
        await _until(lambda: service.e2b.named("read"))  # the first capture holds the lease
        await asyncio.sleep(0.3)
        with pytest.raises(RemoteError) as err:
            await service.call("CaptureSnapshot", capture(org, booted.sandbox.id, idempotency_key="k2"))
        assert err.value.kind.value == "aborted" and err.value.code == "operation_in_progress"
        assert (
            err.value.details.get("retry_after_ms") == "1000"
            or err.value.details.get("retry_after_ms") == 1000
        )
        gate.set()
        done = await first
        again = await service.call("CaptureSnapshot", capture(org, booted.sandbox.id, idempotency_key="k1"))
        assert again.artifact.id == done.artifact.id
        assert len(service.e2b.named("create_snapshot")) == 1

    async def test_terminate_during_capture_is_deferred_then_runs(self, service: Harness, org: str) -> None:
        booted = await boot(service, org)
        gate = asyncio.Event()
        real = service.e2b.create_snapshot

        async def slow(sandbox: object) -> str:
            await gate.wait()
            return await real(sandbox)

        service.e2b.create_snapshot = slow  # type: ignore[method-assign]
        first = asyncio.create_task(service.call("CaptureSnapshot", capture(org, booted.sandbox.id)))
        await _until(lambda: service.e2b.named("read"))
        await asyncio.sleep(0.3)
        term = await service.call(
            "TerminateSandbox", pb.TerminateSandboxRequest(organization_id=org, sandbox_id=booted.sandbox.id)
        )
        assert term.accepted is True
        assert service.e2b.named("kill") == []
        gate.set()
        done = await first
        assert done.artifact.status == "available"
        got = await service.call(
            "GetSandbox", pb.GetSandboxRequest(organization_id=org, sandbox_id=booted.sandbox.id)
        )
        assert got.status == "terminated"
        assert len(service.e2b.named("kill")) == 1

    async def test_capture_of_other_org_or_terminated_sandbox(
        self, service: Harness, org: str, org_second: str
    ) -> None:
        booted = await boot(service, org)
        with pytest.raises(RemoteError) as err:
            await service.call("CaptureSnapshot", capture(org_second, booted.sandbox.id))
        assert err.value.code == "sandbox_not_found"
        await service.call(
            "TerminateSandbox", pb.TerminateSandboxRequest(organization_id=org, sandbox_id=booted.sandbox.id)
        )
        with pytest.raises(RemoteError) as err:
            await service.call("CaptureSnapshot", capture(org, booted.sandbox.id))
        assert err.value.code == "sandbox_terminated"


class TestRestore:
    async def test_restore_from_filesystem_artifact_rewrites_credentials(
        self, service: Harness, org: str
    ) -> None:
        booted = await boot(service, org)
        art = (await service.call("CaptureSnapshot", capture(org, booted.sandbox.id, reapply=True))).artifact
        await service.call(
            "TerminateSandbox", pb.TerminateSandboxRequest(organization_id=org, sandbox_id=booted.sandbox.id)
        )
        again = await boot(service, org, session_id=booted.sandbox.session_id, restore_artifact_id=art.id)
        assert again.restore_outcome == "restored" and again.sandbox.id != booted.sandbox.id
        box = service.e2b.boxes[service.e2b.named("create")[-1] and list(service.e2b.boxes)[-1]]
        assert not any(a[:2] == ["git", "clone"] for a in box.exec_log)  # no clone from a snapshot
        assert SECRET_PATH in box.files and ENV_PATH in box.files and CREDS_PATH in box.files

    async def test_another_providers_artifact_is_provider_mismatch(self, service: Harness, org: str) -> None:
        booted = await boot(service, org)
        art = (await service.call("CaptureSnapshot", capture(org, booted.sandbox.id))).artifact
        with pytest.raises(RemoteError) as err:
            await boot(service, org, provider="modal", restore_artifact_id=art.id)
        assert err.value.code == "provider_mismatch"

    async def test_pause_artifact_of_another_session_is_refused(self, service: Harness, org: str) -> None:
        booted = await boot(service, org)
        art = (
            await service.call("CaptureSnapshot", capture(org, booted.sandbox.id, purpose=C.PAUSE))
        ).artifact
        with pytest.raises(RemoteError) as err:
            await boot(service, org, restore_artifact_id=art.id)
        assert err.value.code == "artifact_session_mismatch"

    async def test_expired_memory_artifact_is_missing_or_falls_back(self, service: Harness, org: str) -> None:
        booted = await boot(service, org, provider="modal")
        art = (
            await service.call("CaptureSnapshot", capture(org, booted.sandbox.id, purpose=C.MIGRATE))
        ).artifact
        async with service.db.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "UPDATE snapshot_artifacts SET expires_at = now() - interval '1 minute' WHERE id = :id"
                ),
                {"id": uuid.UUID(art.id)},
            )
        session = booted.sandbox.session_id
        with pytest.raises(RemoteError) as err:
            await boot(
                service,
                org,
                session_id=session,
                provider="modal",
                mode=pb.EnsureSandboxRequest.FRESH,
                restore_artifact_id=art.id,
            )
        assert err.value.code == "snapshot_missing" and err.value.details.get("detail") == "expired"
        fresh = await boot(
            service, org, session_id=session, provider="modal", mode=pb.EnsureSandboxRequest.FRESH,
            restore_artifact_id=art.id, allow_fresh_fallback=True,
        )  # fmt: skip
        assert fresh.restore_outcome == "fallback_fresh" and "expired" in fresh.fallback_reason


async def _until(predicate: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)
