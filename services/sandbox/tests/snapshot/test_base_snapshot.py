"""Base snapshots (§4.3, §5.5): one build per key, stale keys, failures clean up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from proliferate.devkit.pytest_plugin import TEST_SERVICE_AUTH_SECRET
from proliferate.kit.errors import RemoteError
from proliferate.kit.rpc import ServiceClient, ServiceCredentials
from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from proliferate.protos.sandbox.v1 import sandbox_pb2_grpc
from sandbox_support import Harness


def repos_client(h: Harness) -> ServiceClient:
    return ServiceClient(
        "repos",
        "sandbox",
        f"127.0.0.1:{h.running.grpc_port}",
        ServiceCredentials(TEST_SERVICE_AUTH_SECRET),
        default_timeout=120,
    )


async def call(client: ServiceClient, method: str, request: Any) -> Any:
    return await client.call(getattr(client.stub(sandbox_pb2_grpc.SandboxServiceStub), method), request)


class TestBaseSnapshots:
    async def test_describe_supported_on_modal_only(self, service: Harness) -> None:
        client = repos_client(service)
        modal = await call(client, "DescribeBaseSnapshot", pb.DescribeBaseSnapshotRequest(provider="modal"))
        assert (
            modal.supported and len(modal.version_key) == 64 and modal.provider_app == "proliferate-sandboxes"
        )
        e2b = await call(client, "DescribeBaseSnapshot", pb.DescribeBaseSnapshotRequest(provider="e2b"))
        assert not e2b.supported
        await client.close()

    async def test_two_concurrent_creates_build_once(self, service: Harness) -> None:
        client = repos_client(service)
        service.running  # noqa: B018
        from proliferate.sandbox.snapshot import base as base_module

        base_module.WAIT_POLL_S = 0.1
        key = (
            await call(client, "DescribeBaseSnapshot", pb.DescribeBaseSnapshotRequest(provider="modal"))
        ).version_key
        gate = asyncio.Event()
        real = service.modal.snapshot_filesystem

        async def slow(sandbox: Any, *, timeout: int) -> str:
            await gate.wait()
            return await real(sandbox, timeout=timeout)

        service.modal.snapshot_filesystem = slow  # type: ignore[method-assign]
        request = pb.CreateBaseSnapshotRequest(provider="modal", version_key=key)
        first = asyncio.create_task(call(client, "CreateBaseSnapshot", request))
        second = asyncio.create_task(call(client, "CreateBaseSnapshot", request))
        await asyncio.sleep(1.0)
        gate.set()
        a, b = await asyncio.gather(first, second)
        assert a.provider_snapshot_id == b.provider_snapshot_id
        assert len(service.modal.named("sandbox_create")) == 1
        build = service.modal.named("sandbox_create")[0]
        assert build.kwargs["image"] == ("registry", "ghcr.io/proliferate/sandbox:latest")
        box = next(iter(service.modal.sandboxes.values()))
        assert box.returncode is not None  # the build sandbox is terminated
        assert (
            "/home/user/.config/opencode/plugin/proliferate.mjs"
            in service.modal.images[next(iter(service.modal.images))]
        )
        assert not any(p.startswith("/home/user/workspace/") for p in box.box.files)
        await client.close()

    async def test_stale_key_and_unsupported_provider(self, service: Harness) -> None:
        client = repos_client(service)
        with pytest.raises(RemoteError) as err:
            await call(
                client,
                "CreateBaseSnapshot",
                pb.CreateBaseSnapshotRequest(provider="modal", version_key="old"),
            )
        assert err.value.code == "version_key_stale"
        with pytest.raises(RemoteError) as err:
            await call(
                client, "CreateBaseSnapshot", pb.CreateBaseSnapshotRequest(provider="e2b", version_key="x")
            )
        assert err.value.code == "capability_unsupported"
        await client.close()

    async def test_failing_build_leaves_failed_artifact_and_no_sandbox(self, service: Harness) -> None:
        from modal.exception import SnapshotCreationError

        client = repos_client(service)
        key = (
            await call(client, "DescribeBaseSnapshot", pb.DescribeBaseSnapshotRequest(provider="modal"))
        ).version_key
        service.modal.fail_next(
            "snapshot_filesystem", SnapshotCreationError("snapshot failed: as-secretvalue1234567890")
        )
        with pytest.raises(RemoteError) as err:
            await call(
                client, "CreateBaseSnapshot", pb.CreateBaseSnapshotRequest(provider="modal", version_key=key)
            )
        assert err.value.code == "snapshot_failed"
        assert "as-secretvalue" not in err.value.message
        async with service.db.engine.connect() as conn:
            art = (await conn.execute(sa.text("SELECT status, error FROM snapshot_artifacts"))).one()
            rows = list((await conn.execute(sa.text("SELECT status FROM sandboxes"))).scalars())
        assert art[0] == "failed" and "as-secretvalue" not in art[1]
        assert rows == ["terminated"]
        assert all(s.returncode is not None for s in service.modal.sandboxes.values())
        # A retry (repos owns retries) builds again with the same key.
        service.modal.snapshot_filesystem = service.modal.snapshot_filesystem  # type: ignore[method-assign]
        again = await call(
            client, "CreateBaseSnapshot", pb.CreateBaseSnapshotRequest(provider="modal", version_key=key)
        )
        assert again.provider_snapshot_id
        await client.close()


class TestCallers:
    async def test_allow_list(self, service: Harness, org: str) -> None:
        client = repos_client(service)
        with pytest.raises(RemoteError) as err:
            await call(client, "GetSandbox", pb.GetSandboxRequest(organization_id=org, sandbox_id=org))
        assert err.value.kind.value == "permission_denied"
        with pytest.raises(RemoteError) as err:
            await service.call("DescribeBaseSnapshot", pb.DescribeBaseSnapshotRequest(provider="modal"))
        assert err.value.kind.value == "permission_denied"
        await client.close()
