"""Conformance C22-C32 (process isolation and live providers) and the sandbox-mcp lines of
sandbox-provider.md §10 (25-28), all through a sandbox the service booted."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conformance_support import Conformance, until
from proliferate.kit.errors import RemoteError
from proliferate.kit.ids import uuid7
from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from proliferate.sandbox.providers.base import ArtifactKind, CapabilityUnsupported, ProviderError
from proliferate.sandbox.sandbox.jobs import SandboxJobs

C = pb.CaptureSnapshotRequest


async def token_of(sbx: Conformance, booted: pb.EnsureSandboxResponse) -> str:
    from proliferate.sandbox.sandbox.home import parse_session_env

    if sbx.case == "local-process":
        raw = (sbx.root / "sandboxes" / booted.sandbox.id / "tmp/proliferate/session.env").read_bytes()
    else:
        raw = (await sbx.read(booted.sandbox.id, "/tmp/proliferate/session.env")).encode()
    return parse_session_env(raw)["SANDBOX_MCP_AUTH_TOKEN"]


async def api(
    sbx: Conformance, sb: pb.Sandbox, method: str, path: str, token: str | None, **kw: Any
) -> httpx.Response:
    return await sbx.http(sb, method, f"/_proliferate/mcp{path}", token, **kw)


class TestCapabilities:
    async def test_c22_pause_keeps_files_and_a_running_service(self, sbx_process: Conformance) -> None:
        sbx = sbx_process
        booted = await sbx.ensure()
        token = await token_of(sbx, booted)
        home = sbx.home(booted)
        started = await api(
            sbx,
            booted.sandbox,
            "POST",
            "/api/services",
            token,
            json={"name": "ticker", "command": "sleep 600"},
        )
        assert started.status_code == 200, started.text
        pid = started.json()["pid"]
        await sbx.exec(booted.sandbox.id, "bash", "-c", f"echo kept > {home}/workspace/app/kept.txt")
        reply = await sbx.capture(booted.sandbox.id, purpose=C.PAUSE, scrub=C.BEST_EFFORT)
        if sbx.provider.capabilities.pause:
            assert (reply.artifact.kind, reply.sandbox_retained) == ("pause", True)
            assert (await sbx.get(booted.sandbox.id)).status == "paused"
            resumed = await sbx.ensure(session=booted.sandbox.session_id, sandbox_token=token)
            assert resumed.resumed and resumed.sandbox.id == booted.sandbox.id
            assert (await sbx.read(booted.sandbox.id, f"{home}/workspace/app/kept.txt")) == "kept\n"
            services = (await api(sbx, resumed.sandbox, "GET", "/api/services", token)).json()
            ticker = next(s for s in services["services"] if s["name"] == "ticker")
            assert (ticker["status"], ticker["pid"]) == ("running", pid)
            # §10.11: MIGRATE where there is no memory snapshot is a filesystem artifact.
            migrate = await sbx.capture(
                booted.sandbox.id, purpose=C.MIGRATE, scrub=C.BEST_EFFORT, reapply=True
            )
            expected = "memory" if sbx.provider.capabilities.memory_snapshot else "filesystem"
            assert (migrate.artifact.kind, migrate.sandbox_retained) == (expected, False)
        else:
            assert reply.artifact.kind in ("memory", "filesystem") and not reply.sandbox_retained

    async def test_c23_memory_snapshot_only_where_declared(self, sbx_process: Conformance) -> None:
        sbx = sbx_process
        booted = await sbx.ensure(repos=[])
        ps = sbx.ctx.handle(await _row(sbx, booted.sandbox.id))
        if not sbx.provider.capabilities.memory_snapshot:
            with pytest.raises(CapabilityUnsupported):
                await sbx.provider.snapshot(ps, ArtifactKind.MEMORY)
            return
        await sbx.exec(booted.sandbox.id, "bash", "-c", "nohup sleep 900 >/dev/null 2>&1 &")
        art = (await sbx.capture(booted.sandbox.id, purpose=C.MIGRATE)).artifact
        assert art.kind == "memory"
        restored = await sbx.ensure(
            session=booted.sandbox.session_id, mode=pb.EnsureSandboxRequest.FRESH, restore_artifact_id=art.id
        )
        ps_out = await sbx.exec(restored.sandbox.id, "pgrep", "-f", "sleep 900")
        assert ps_out.exit_code == 0

    async def test_c24_another_providers_artifact_is_refused(self, sbx_process: Conformance) -> None:
        sbx = sbx_process
        other = "e2b" if sbx.provider.kind.value != "e2b" else "modal"
        artifact_id = uuid7()
        async with sbx.db.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO snapshot_artifacts (id, organization_id, provider, provider_namespace, kind,"
                    " provider_ref, status, scrubbed, session_id)"
                    " VALUES (:id, :org, :p, 'elsewhere', 'filesystem', 'ref-1', 'available', true, NULL)"
                ),
                {"id": artifact_id, "org": uuid.UUID(sbx.org), "p": other},
            )
        with pytest.raises(RemoteError) as err:
            await sbx.ensure(provider=sbx.provider.kind.value, restore_artifact_id=str(artifact_id))
        assert err.value.code == "provider_mismatch"

    async def test_c25_expiry_at_a_60s_timeout_is_reported_dead(self, sbx_process: Conformance) -> None:
        sbx = sbx_process
        booted = await sbx.ensure(repos=[], timeout_seconds=60)
        lifetime = booted.sandbox.expires_at.ToDatetime() - booted.sandbox.created_at.ToDatetime()
        assert 55 <= lifetime.total_seconds() <= 65
        async with sbx.db.engine.begin() as conn:  # the minute passes
            await conn.execute(sa.text("UPDATE sandboxes SET expires_at = now() - interval '1 second'"))
        await SandboxJobs(sbx.ctx).reap()
        check = await sbx.call(
            "CheckSandboxes",
            pb.CheckSandboxesRequest(organization_id=sbx.org, sandbox_ids=[booted.sandbox.id]),
        )
        assert list(check.alive_ids) == []
        assert (await sbx.get(booted.sandbox.id)).terminate_reason == "expired"

    async def test_c26_health_is_false_not_an_exception_when_broken(
        self, sbx_process: Conformance, tmp_path: Path
    ) -> None:
        sbx = sbx_process
        assert (await sbx.provider.health()).ok
        listed = await sbx.call("ListProviders", pb.ListProvidersRequest())
        [info] = listed.providers
        assert info.healthy and info.is_default and info.kind == sbx.provider.kind.value
        if sbx.local:
            from dataclasses import replace

            from proliferate.sandbox.providers.local import LocalProvider

            broken_root = tmp_path / "not-a-dir"
            broken_root.write_text("x")
            broken = LocalProvider(replace(sbx.provider.config, root=broken_root))
            health = await broken.health()
            assert health.ok is False and "not writable" in health.detail

    async def test_c27_a_token_inside_an_error_is_redacted(self, sbx_process: Conformance) -> None:
        sbx = sbx_process
        leaked = "ghp_" + uuid.uuid4().hex + "LEAK"
        repo = pb.RepoSpec(
            repo_id="r",
            clone_url=f"{sbx.git.url}/acme/{leaked}.git",
            token="ghs_" + uuid.uuid4().hex,
            workspace_path="x",
        )
        with pytest.raises(RemoteError) as err:
            await sbx.ensure(repos=[repo])
        assert err.value.code == "boot_failed"
        assert leaked not in err.value.message
        row = (await sbx.call("ListSandboxes", pb.ListSandboxesRequest(organization_id=sbx.org))).sandboxes[0]
        assert leaked not in row.error_message and leaked not in row.boot_report_json
        from proliferate.sandbox.redaction import redact

        assert leaked not in str(ProviderError("local", "exec", f"failed with {leaked}", retryable=False))
        assert redact(f"Bearer {leaked}") == "[REDACTED]"

    async def test_c28_autostart_only_when_requested(self, sbx_process: Conformance) -> None:
        sbx = sbx_process
        commands = [pb.ServiceCommand(name="web", command="sleep 900", workspace_path="app")]
        off = await sbx.ensure(service_commands=commands)
        on = await sbx.ensure(service_commands=commands, autostart_services=True)
        off_token, on_token = await token_of(sbx, off), await token_of(sbx, on)

        async def started() -> bool:
            services = (await api(sbx, on.sandbox, "GET", "/api/services", on_token)).json()["services"]
            return any(s["name"] == "web" and s["status"] == "running" for s in services)

        await until(started, timeout=30, interval=0.3)
        await asyncio.sleep(0.5)
        services = (await api(sbx, off.sandbox, "GET", "/api/services", off_token)).json()["services"]
        assert services == []

    async def test_c29_sandbox_mcp_auth(self, sbx_process: Conformance) -> None:
        sbx = sbx_process
        booted = await sbx.ensure(repos=[])
        other = await sbx.ensure(repos=[])
        token, foreign = await token_of(sbx, booted), await token_of(sbx, other)
        assert (await api(sbx, booted.sandbox, "GET", "/api/health", None)).status_code == 200
        for bad in (None, foreign, "stale-" + uuid.uuid4().hex):
            assert (await api(sbx, booted.sandbox, "GET", "/api/boot", bad)).status_code == 401, bad
            assert (
                await sbx.http(booted.sandbox, "GET", "/_proliferate/agent/session", bad)
            ).status_code == 401
        assert (await api(sbx, booted.sandbox, "GET", "/api/boot", token)).status_code == 200
        terminal = await api(
            sbx,
            booted.sandbox,
            "GET",
            "/api/terminal",
            None,
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
        assert terminal.status_code == 401

    async def test_c30_router_routes_platform_paths_and_the_exposed_port(
        self, sbx_process: Conformance
    ) -> None:
        sbx = sbx_process
        booted = await sbx.ensure(repos=[])
        token = await token_of(sbx, booted)
        assert (await api(sbx, booted.sandbox, "GET", "/api/health", token)).status_code == 200
        assert (
            await sbx.http(booted.sandbox, "GET", "/_proliferate/agent/session", token)
        ).status_code == 200
        ps = sbx.ctx.handle(await _row(sbx, booted.sandbox.id))
        app_port = ps.ports.vscode + 1 if sbx.local else 3000  # a free port of the block
        started = await api(
            sbx, booted.sandbox, "POST", "/api/services", token,
            json={"name": "app", "command": f"python3 -m http.server {app_port} --bind 127.0.0.1"},
        )  # fmt: skip
        assert started.status_code == 200, started.text
        exposed = await api(sbx, booted.sandbox, "POST", "/api/expose", token, json={"port": app_port})
        assert exposed.status_code == 200, exposed.text

        async def served() -> bool:
            try:
                return (await sbx.http(booted.sandbox, "GET", "/", None)).status_code == 200
            except httpx.HTTPError:
                return False

        await until(served, timeout=30, interval=0.3)

    async def test_c31_base_layer_without_repo_or_metadata(self, sbx_process: Conformance) -> None:
        sbx = sbx_process
        describe = await _describe(sbx)
        assert describe.supported == sbx.provider.supports_base_snapshots
        booted = await sbx.ensure(repos=[], prompt_mode="scratch")
        home = sbx.home(booted)
        plugin = await sbx.exec(
            booted.sandbox.id, "test", "-f", f"{home}/.config/opencode/plugin/proliferate.mjs"
        )
        modules = await sbx.exec(
            booted.sandbox.id, "test", "-d", f"{home}/.config/opencode/node_modules/@opencode-ai/plugin"
        )
        assert plugin.exit_code == 0 and modules.exit_code == 0
        if sbx.local:
            fresh = sbx.root / "toolcache"
            [cache] = [p for p in fresh.iterdir() if (p / ".complete").exists()]
            assert (
                not (cache / "workspace").exists() and not (cache / ".proliferate" / "metadata.json").exists()
            )

    async def test_c32_unsafe_secret_file_path_refused_before_writing(self, sbx_process: Conformance) -> None:
        sbx = sbx_process
        booted = await sbx.ensure()
        for path in ("../escape", "/etc/x", "sub/../../x", ".git/config"):
            with pytest.raises(RemoteError) as err:
                await sbx.call(
                    "WriteSecretFiles",
                    pb.WriteSecretFilesRequest(
                        organization_id=sbx.org,
                        sandbox_id=booted.sandbox.id,
                        files=[
                            pb.SecretFile(workspace_path="app", file_path="ok.env", content=b"A=1"),
                            pb.SecretFile(workspace_path="app", file_path=path, content=b"B=2"),
                        ],
                    ),
                )
            assert err.value.code == "unsafe_path"
        missing = await sbx.exec(booted.sandbox.id, "test", "-e", f"{sbx.home(booted)}/workspace/app/ok.env")
        assert missing.exit_code == 1
        written = await sbx.call(
            "WriteSecretFiles",
            pb.WriteSecretFilesRequest(
                organization_id=sbx.org,
                sandbox_id=booted.sandbox.id,
                files=[pb.SecretFile(workspace_path="app", file_path="ok.env", content=b"A=1")],
            ),
        )
        assert list(written.paths) == ["app/ok.env"]


class TestSandboxMcpThroughTheService:
    """sandbox-provider.md §10, items 25-28."""

    async def test_10_25_service_name_and_reserved_port_refused(self, sbx_process: Conformance) -> None:
        sbx = sbx_process
        booted = await sbx.ensure(repos=[])
        token = await token_of(sbx, booted)
        bad_name = await api(
            sbx, booted.sandbox, "POST", "/api/services", token, json={"name": "../../etc", "command": "true"}
        )
        assert bad_name.status_code == 400
        bad_port = await api(sbx, booted.sandbox, "POST", "/api/expose", token, json={"port": 4096})
        assert bad_port.status_code == 400

    async def test_10_26_git_diff_of_a_path_symlinked_outside_is_400(self, sbx_process: Conformance) -> None:
        import base64

        sbx = sbx_process
        booted = await sbx.ensure()
        token = await token_of(sbx, booted)
        home = sbx.home(booted)
        await sbx.exec(booted.sandbox.id, "ln", "-s", "/etc/passwd", f"{home}/workspace/app/outside")
        repo = base64.urlsafe_b64encode(f"{home}/workspace/app".encode()).decode().rstrip("=")
        diff = await api(sbx, booted.sandbox, "GET", f"/api/git/diff?repo={repo}&path=outside", token)
        assert diff.status_code == 400

    async def test_10_27_supervisor_restarts_a_killed_agent(self, sbx_process: Conformance) -> None:
        sbx = sbx_process
        booted = await sbx.ensure(repos=[])
        token = await token_of(sbx, booted)
        boot = (await api(sbx, booted.sandbox, "GET", "/api/boot", token)).json()
        pid = boot["processes"]["agent"]["pid"]
        await sbx.exec(booted.sandbox.id, "kill", "-9", str(pid))

        async def restarted() -> bool:
            doc = (await api(sbx, booted.sandbox, "GET", "/api/boot", token)).json()["processes"]["agent"]
            return doc["pid"] != pid and doc["state"] == "running" and doc["restarts"] >= 1

        await until(restarted, timeout=30, interval=0.3)
        # The give-up after 5 restarts in 5 min (reported in /api/boot) is covered by
        # libs/sandbox-mcp/tests/test_supervisor.py with a shortened backoff.

    async def test_10_28_refresh_credentials_rotates_the_sandbox_token(
        self, sbx_process: Conformance
    ) -> None:
        sbx = sbx_process
        booted = await sbx.ensure(repos=[])
        old = await token_of(sbx, booted)
        new = "sbx-rotated-" + uuid.uuid4().hex
        reply = await sbx.call(
            "RefreshCredentials",
            pb.RefreshCredentialsRequest(
                organization_id=sbx.org, sandbox_id=booted.sandbox.id, sandbox_token=new
            ),
        )
        assert reply.sandbox_token_replaced

        async def rotated() -> bool:
            old_status = (await api(sbx, booted.sandbox, "GET", "/api/boot", old)).status_code
            new_status = (await api(sbx, booted.sandbox, "GET", "/api/boot", new)).status_code
            return old_status == 401 and new_status == 200

        await until(rotated, timeout=5, interval=0.2)


async def _row(sbx: Conformance, sandbox_id: str) -> Any:
    from proliferate.sandbox.sandbox.repository import SandboxRepository

    async with sbx.ctx.db.unit_of_work() as session:
        return await SandboxRepository(session).get_unscoped(uuid.UUID(sandbox_id))


async def _describe(sbx: Conformance) -> pb.BaseSnapshotSpec:
    from proliferate.devkit.pytest_plugin import TEST_SERVICE_AUTH_SECRET
    from proliferate.kit.rpc import ServiceClient, ServiceCredentials
    from proliferate.protos.sandbox.v1 import sandbox_pb2_grpc

    repos = ServiceClient(
        "repos", "sandbox", sbx.client.address, ServiceCredentials(TEST_SERVICE_AUTH_SECRET)
    )
    try:
        stub = repos.stub(sandbox_pb2_grpc.SandboxServiceStub)
        reply: pb.BaseSnapshotSpec = await repos.call(
            stub.DescribeBaseSnapshot, pb.DescribeBaseSnapshotRequest(provider=sbx.provider.kind.value)
        )
        return reply
    finally:
        await repos.close()
