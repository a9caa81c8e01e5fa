"""C5: the E2B adapter against a faithful fake of its SDK port - exact calls and arguments,
errors and timeouts mapped to retryable vs permanent."""

from __future__ import annotations

import shlex

import pytest
from e2b import (
    AuthenticationException,
    RateLimitException,
    SandboxNotFoundException,
    ServiceBusyException,
    TimeoutException,
)
from proliferate.sandbox.providers.base import (
    ArtifactKind,
    ArtifactRef,
    CreateRequest,
    FileWrite,
    ProviderError,
    ProviderSandbox,
    SandboxGone,
)
from proliferate.sandbox.providers.e2b import E2BProvider
from proliferate.sandbox.providers.remote_scripts import EXEC_WRAPPER, PLACE_FILES
from sandbox_fakes import FakeE2BPort

NS = "e2b.app/proliferate-sandbox"


@pytest.fixture
def port() -> FakeE2BPort:
    return FakeE2BPort()


@pytest.fixture
def provider(port: FakeE2BPort) -> E2BProvider:
    return E2BProvider(port, template="proliferate-sandbox", retry_delays=(0.0, 0.0, 0.0))


async def created(provider: E2BProvider, sandbox_id: str = "sbx-1") -> ProviderSandbox:
    return await provider.create(
        CreateRequest(
            sandbox_id=sandbox_id,
            purpose="session",
            timeout_s=3600,
            env={"PROLIFERATE_SANDBOX_ID": sandbox_id},
        )
    )


class TestCalls:
    async def test_create_passes_template_env_metadata_and_timeout(
        self, provider: E2BProvider, port: FakeE2BPort
    ) -> None:
        ps = await created(provider)
        [call] = port.named("create")
        assert call.kwargs["template"] == "proliferate-sandbox"
        assert call.kwargs["envs"] == {"PROLIFERATE_SANDBOX_ID": "sbx-1"}
        assert call.kwargs["timeout"] == 3600
        meta = call.kwargs["metadata"]
        assert (meta["proliferate_sandbox_id"], meta["proliferate_namespace"]) == ("sbx-1", NS)
        assert ps.provider_sandbox_id.startswith("e2b-")

    async def test_restore_uses_the_snapshot_as_template(
        self, provider: E2BProvider, port: FakeE2BPort
    ) -> None:
        ps = await created(provider)
        art = await provider.snapshot(ps, ArtifactKind.FILESYSTEM)
        assert port.named("create_snapshot")[0].args == (ps.provider_sandbox_id,)
        ref = ArtifactRef("a1", ArtifactKind.FILESYSTEM, art.provider_ref)
        await provider.create(CreateRequest(sandbox_id="sbx-2", purpose="session", timeout_s=60, source=ref))
        assert port.named("create")[-1].kwargs["template"] == art.provider_ref

    async def test_exec_is_argv_quoted_under_an_in_sandbox_timeout(
        self, provider: E2BProvider, port: FakeE2BPort
    ) -> None:
        ps = await created(provider)
        result = await provider.exec(
            ps, ["echo", "$HOME; rm -rf /"], cwd="/home/user/workspace", env={"A": "1"}, timeout_s=30
        )
        assert result.exit_code == 0
        [call] = port.named("run")
        argv = shlex.split(call.args[1])
        assert argv[:4] == ["bash", "-c", EXEC_WRAPPER, "proliferate-exec"]
        assert argv[4:] == ["timeout", "-k", "5", "30", "echo", "$HOME; rm -rf /"]
        assert call.kwargs["cwd"] == "/home/user/workspace"
        assert call.kwargs["envs"] == {"A": "1", "PROLIFERATE_SESSION_ENV": "/tmp/proliferate/session.env"}
        assert call.kwargs["timeout"] == 45.0

    async def test_write_files_is_atomic_with_modes(self, provider: E2BProvider, port: FakeE2BPort) -> None:
        ps = await created(provider)
        await provider.write_files(ps, [FileWrite("/home/user/workspace/.env", b"S=1", 0o600)])
        mkdir, place = (shlex.split(c.args[1]) for c in port.named("run"))
        assert mkdir[-4:] == ["mkdir", "-p", "--", "/home/user/workspace"]
        [write] = port.named("write")
        tmp = write.args[1]
        assert tmp.startswith("/home/user/workspace/..env.") and write.args[2] == b"S=1"
        assert place[-5:] == ["-c", PLACE_FILES, "600", tmp, "/home/user/workspace/.env"]
        assert port.boxes[ps.provider_sandbox_id].files["/home/user/workspace/.env"] == (b"S=1", 0o600)

    async def test_pause_resume_and_terminate(self, provider: E2BProvider, port: FakeE2BPort) -> None:
        ps = await created(provider)
        art = await provider.snapshot(ps, ArtifactKind.PAUSE)
        assert art.kind is ArtifactKind.PAUSE and port.boxes[ps.provider_sandbox_id].state == "paused"
        await provider.resume(ps)
        assert port.named("connect")[-1].args == (ps.provider_sandbox_id,)
        assert port.boxes[ps.provider_sandbox_id].state == "running"
        await provider.terminate(ps)
        await provider.terminate(ps)  # not found counts as success
        assert [c.args for c in port.named("kill")] == [(ps.provider_sandbox_id,)] * 2

    async def test_liveness_lists_and_never_connects(self, provider: E2BProvider, port: FakeE2BPort) -> None:
        ps = await created(provider)
        other = await created(provider, "sbx-2")
        await provider.snapshot(other, ArtifactKind.PAUSE)
        provider._handles.clear()
        connects = len(port.named("connect"))
        assert await provider.list_alive([ps, other]) == {"sbx-1", "sbx-2"}
        assert await provider.list_alive([]) == set()
        assert len(port.named("connect")) == connects
        assert port.boxes[other.provider_sandbox_id].state == "paused"
        [listing] = port.named("list")
        assert listing.kwargs == {"metadata": {"proliferate_namespace": NS}, "states": ["running", "paused"]}


class TestErrors:
    async def test_listing_error_is_unavailable_never_none_alive(
        self, provider: E2BProvider, port: FakeE2BPort
    ) -> None:
        ps = await created(provider)
        port.fail_next("list", *[ServiceBusyException("busy")] * 3)
        with pytest.raises(ProviderError) as err:
            await provider.list_alive([ps])
        assert err.value.retryable and len(port.named("list")) == 3  # retried, then raised

    @pytest.mark.parametrize(
        ("error", "retryable"),
        [
            (RateLimitException("429 too many"), True),
            (TimeoutException("request timed out"), True),
            (ServiceBusyException("503"), True),
            (AuthenticationException("invalid api key e2b_0123456789abcdef0123"), False),
        ],
    )
    async def test_create_errors_are_mapped(
        self, provider: E2BProvider, port: FakeE2BPort, error: Exception, retryable: bool
    ) -> None:
        port.fail_next("create", error)
        with pytest.raises(ProviderError) as err:
            await created(provider)
        assert err.value.retryable is retryable
        assert "e2b_0123456789abcdef0123" not in err.value.message
        assert len(port.named("create")) == 1  # create is never retried (no duplicate-name guard)

    async def test_exec_timeout_is_exit_124(self, provider: E2BProvider, port: FakeE2BPort) -> None:
        ps = await created(provider)
        box = port.boxes[ps.provider_sandbox_id]
        original = box.run
        box.run = lambda argv: (124, "", "") if "sleep" in argv else original(argv)  # type: ignore[method-assign]
        result = await provider.exec(ps, ["sleep", "99"], timeout_s=1)
        assert result.exit_code == 124 and result.timed_out

    async def test_gone_sandbox(self, provider: E2BProvider, port: FakeE2BPort) -> None:
        ps = await created(provider)
        port.boxes[ps.provider_sandbox_id].state = "killed"
        assert await provider.find("sbx-1", ps.provider_sandbox_id) is None
        provider._handles.clear()
        with pytest.raises(SandboxGone):
            await provider.exec(ps, ["true"])

    async def test_health_false_with_bad_credentials(self, provider: E2BProvider, port: FakeE2BPort) -> None:
        port.fail_next("list", AuthenticationException("401 invalid e2b_0123456789abcdef0123"))
        health = await provider.health()
        assert health.ok is False and "e2b_0123456789abcdef0123" not in health.detail
        port.fail_next("connect", SandboxNotFoundException("gone"))
