"""C5: the Modal adapter against a faithful fake of its SDK port - exact calls and arguments,
errors and timeouts mapped to retryable vs permanent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from modal.exception import AlreadyExistsError, AuthError, ConnectionError, ExecTimeoutError, NotFoundError
from proliferate.sandbox.providers.base import (
    ArtifactKind,
    ArtifactRef,
    CapabilityUnsupported,
    CreateRequest,
    ProviderError,
    ProviderSandbox,
)
from proliferate.sandbox.providers.modal import ModalProvider
from proliferate.sandbox.providers.modal.provider import SUPERVISOR
from sandbox_fakes import FakeModalPort

IMAGE = "registry.example/proliferate/sandbox:7"


@pytest.fixture
def port() -> FakeModalPort:
    return FakeModalPort()


@pytest.fixture
def provider(port: FakeModalPort) -> ModalProvider:
    return ModalProvider(
        port, app_name="proliferate-sandboxes-test", image_ref=IMAGE, retry_delays=(0.0, 0.0, 0.0)
    )


async def created(provider: ModalProvider, sandbox_id: str = "sbx-1", **kw: object) -> ProviderSandbox:
    return await provider.create(
        CreateRequest(
            sandbox_id=sandbox_id,
            purpose="session",
            timeout_s=1800,
            env={"PROLIFERATE_SANDBOX_ID": sandbox_id},
            labels={"proliferate_sandbox_id": sandbox_id},
            **kw,
        )  # type: ignore[arg-type]
    )


class TestCalls:
    async def test_create_in_the_app_named_by_our_id(
        self, provider: ModalProvider, port: FakeModalPort
    ) -> None:
        ps = await created(provider)
        assert port.named("app_lookup")[0].args == ("proliferate-sandboxes-test",)
        assert port.named("app_lookup")[0].kwargs == {"create_if_missing": True}
        assert port.named("image_from_registry")[0].args == (IMAGE,)
        [call] = port.named("sandbox_create")
        assert call.args == SUPERVISOR
        kw = call.kwargs
        assert kw["name"] == "sbx-1" and kw["app"].name == "proliferate-sandboxes-test"
        assert kw["image"] == ("registry", IMAGE)
        assert (kw["cpu"], kw["memory"], kw["timeout"]) == (2.0, 4096, 1800)
        assert kw["encrypted_ports"] == [20000]
        assert (
            kw["experimental_options"] == {"enable_docker": True}
            and kw["_experimental_enable_snapshot"] is True
        )
        assert kw["tags"]["proliferate_sandbox_id"] == "sbx-1"
        assert kw["env"] == {"PROLIFERATE_SANDBOX_ID": "sbx-1"}
        assert ps.provider_sandbox_id.startswith("sb-")

    async def test_create_is_retried_and_a_taken_name_is_adopted(
        self, provider: ModalProvider, port: FakeModalPort
    ) -> None:
        port.fail_next("sandbox_create", ConnectionError("reset"))
        ps = await created(provider)
        assert len(port.named("sandbox_create")) == 2
        # A retry that finds the name taken adopts the first attempt's sandbox.
        again = await created(provider)
        assert again.provider_sandbox_id == ps.provider_sandbox_id
        assert port.named("sandbox_from_name")[0].args == ("proliferate-sandboxes-test", "sbx-1")

    async def test_endpoints_are_the_router_tunnel(
        self, provider: ModalProvider, port: FakeModalPort
    ) -> None:
        ps = await created(provider)
        endpoints = await provider.endpoints(ps)
        assert endpoints.preview_url == f"https://{ps.provider_sandbox_id}.modal.test"
        assert endpoints.opencode_url.endswith("/_proliferate/agent")
        assert port.named("sandbox_tunnels")[0].kwargs == {"timeout": 30}

    async def test_snapshots(self, provider: ModalProvider, port: FakeModalPort) -> None:
        ps = await created(provider)
        now = datetime.now(UTC)
        fs = await provider.snapshot(ps, ArtifactKind.FILESYSTEM)
        assert port.named("snapshot_filesystem")[0].kwargs == {"timeout": 55}
        assert fs.expires_at is not None and fs.expires_at - now > timedelta(days=29)
        mem = await provider.snapshot(ps, ArtifactKind.MEMORY)
        assert mem.kind is ArtifactKind.MEMORY and mem.expires_at is not None
        assert timedelta(days=6) < mem.expires_at - now <= timedelta(days=7, seconds=5)
        with pytest.raises(CapabilityUnsupported):
            await provider.snapshot(ps, ArtifactKind.PAUSE)
        restored = await provider.create(
            CreateRequest(
                sandbox_id="sbx-2",
                purpose="session",
                timeout_s=60,
                source=ArtifactRef("a", ArtifactKind.MEMORY, mem.provider_ref),
            )
        )
        assert port.named("sandbox_from_memory_snapshot")[0].kwargs == {"name": "sbx-2"}
        assert restored.provider_sandbox_id != ps.provider_sandbox_id
        await provider.create(
            CreateRequest(
                sandbox_id="sbx-3",
                purpose="session",
                timeout_s=60,
                source=ArtifactRef("b", ArtifactKind.FILESYSTEM, fs.provider_ref),
            )
        )
        assert port.named("image_from_id")[0].args == (fs.provider_ref,)
        assert port.named("sandbox_create")[-1].kwargs["image"] == ("image", fs.provider_ref)

    async def test_exec_and_terminate(self, provider: ModalProvider, port: FakeModalPort) -> None:
        ps = await created(provider)
        await provider.exec(ps, ["ls", "-la"], cwd="/home/user/workspace", timeout_s=20)
        call = port.named("sandbox_exec")[0]
        assert call.args[1][4:] == ["timeout", "-k", "5", "20", "ls", "-la"]
        assert call.kwargs["workdir"] == "/home/user/workspace" and call.kwargs["timeout"] == 35
        await provider.terminate(ps)
        provider._handles.clear()
        port.fail_next("sandbox_from_id", NotFoundError("gone"))
        await provider.terminate(ps)  # not found counts as success
        assert len(port.named("sandbox_terminate")) == 1

    async def test_liveness_is_one_listing(self, provider: ModalProvider, port: FakeModalPort) -> None:
        a, b = await created(provider, "sbx-1"), await created(provider, "sbx-2")
        await provider.terminate(b)
        before = len(port.calls)
        assert await provider.list_alive([a, b]) == {"sbx-1"}
        names = [c.name for c in port.calls[before:]]
        assert names == ["app_lookup", "sandbox_list"] or names == ["sandbox_list"]
        assert port.named("sandbox_list")[0].kwargs == {
            "app_id": "ap-proliferate-sandboxes-test",
            "tags": None,
        }


class TestErrors:
    async def test_permanent_vs_retryable(self, provider: ModalProvider, port: FakeModalPort) -> None:
        port.fail_next("sandbox_create", AuthError("token as-abcdef0123456789abcd rejected"))
        with pytest.raises(ProviderError) as err:
            await created(provider)
        assert not err.value.retryable and "as-abcdef0123456789abcd" not in err.value.message
        port.fail_next("sandbox_create", *[ConnectionError("reset")] * 3)
        with pytest.raises(ProviderError) as err:
            await created(provider, "sbx-9")
        assert err.value.retryable

    async def test_exec_timeout(self, provider: ModalProvider, port: FakeModalPort) -> None:
        ps = await created(provider)
        port.fail_next("sandbox_exec", ExecTimeoutError("exec timed out"))
        with pytest.raises(ProviderError) as err:
            await provider.exec(ps, ["sleep", "999"], timeout_s=1)
        assert err.value.retryable

    async def test_already_exists_without_a_live_one_is_permanent(
        self, provider: ModalProvider, port: FakeModalPort
    ) -> None:
        port.fail_next("sandbox_create", AlreadyExistsError("exists"))
        port.fail_next("sandbox_from_name", NotFoundError("gone meanwhile"))
        with pytest.raises(ProviderError):
            await created(provider)

    async def test_health_false_with_bad_credentials(
        self, provider: ModalProvider, port: FakeModalPort
    ) -> None:
        port.fail_next("app_lookup", AuthError("invalid token ak-abcdef0123456789abcd"))
        health = await provider.health()
        assert health.ok is False and "ak-abcdef0123456789abcd" not in health.detail
