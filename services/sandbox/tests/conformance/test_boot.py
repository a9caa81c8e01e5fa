"""Conformance C1-C11: boot, repos, manifest, env, secret files, exec, file reads."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from conformance_support import REPO_TOKEN, Conformance, until
from proliferate.agent_contract import (
    AgentConfig,
    Capabilities,
    ManifestInput,
    Ports,
    build_manifest,
    tools_for_mode,
)
from proliferate.kit.errors import RemoteError
from proliferate.kit.rpc import translate_errors
from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from proliferate.protos.sandbox.v1 import sandbox_pb2_grpc


class TestBoot:
    async def test_c1_boot_one_repo_fresh(self, sbx: Conformance) -> None:
        reply = await sbx.ensure()
        home = sbx.home(reply)
        assert (reply.sandbox.status, reply.restore_outcome, reply.agent_ready) == ("ready", "fresh", True)
        assert await sbx.read(reply.sandbox.id, f"{home}/workspace/app/README.md") == "app\n"
        meta = json.loads(await sbx.read(reply.sandbox.id, f"{home}/.proliferate/metadata.json"))
        assert meta["repo_dir"] == f"{home}/workspace/app" and meta["sandbox_id"] == reply.sandbox.id
        health = await sbx.http(reply.sandbox, "GET", "/_proliferate/mcp/api/health", None)
        assert health.status_code == 200
        agent_ms = next(s.ms for s in reply.boot.steps if s.name == "agent")
        assert agent_ms <= 30_000
        # §10.8: no credentials in .git/config
        config = await sbx.read(reply.sandbox.id, f"{home}/workspace/app/.git/config")
        assert REPO_TOKEN not in config and "x-access-token" not in config

    async def test_c2_two_repos_at_their_paths(self, sbx: Conformance) -> None:
        reply = await sbx.ensure(repos=[sbx.repo("app", "app"), sbx.repo("lib", "libs/lib")])
        home = sbx.home(reply)
        assert await sbx.read(reply.sandbox.id, f"{home}/workspace/libs/lib/README.md") == "lib\n"
        meta = json.loads(await sbx.read(reply.sandbox.id, f"{home}/.proliferate/metadata.json"))
        assert meta["repo_dir"] == f"{home}/workspace"

    async def test_c3_zero_repos(self, sbx: Conformance) -> None:
        reply = await sbx.ensure(repos=[], prompt_mode="scratch")
        home = sbx.home(reply)
        assert reply.sandbox.status == "ready" and reply.agent_ready
        out = await sbx.exec(reply.sandbox.id, "ls", "-A", f"{home}/workspace")
        assert out.stdout.strip() == ""

    async def test_c4_missing_branch_uses_default_branch_noted(self, sbx: Conformance) -> None:
        reply = await sbx.ensure(repos=[sbx.repo(branch="no-such-branch")])
        assert reply.sandbox.status == "ready"
        assert any(s.name == "branch:repo-app" and "not found" in s.detail for s in reply.boot.steps)
        head = await sbx.exec(
            reply.sandbox.id, "git", "-C", f"{sbx.home(reply)}/workspace/app", "branch", "--show-current"
        )
        assert head.stdout.strip() == "main"
        other = await sbx.ensure(repos=[sbx.repo(branch="feature")])
        head = await sbx.exec(
            other.sandbox.id, "git", "-C", f"{sbx.home(other)}/workspace/app", "branch", "--show-current"
        )
        assert head.stdout.strip() == "feature"

    async def test_c5_clone_failure_fails_and_leaves_nothing(self, sbx: Conformance) -> None:
        from proliferate.sandbox.sandbox.jobs import SandboxJobs

        bad = sbx.repo(token="ghs_wrong_token_" + uuid.uuid4().hex)
        with pytest.raises(RemoteError) as err:
            await sbx.ensure(repos=[bad])
        assert err.value.code == "boot_failed"
        listed = await sbx.call("ListSandboxes", pb.ListSandboxesRequest(organization_id=sbx.org))
        [row] = listed.sandboxes
        assert (row.status, row.terminate_reason) == ("failed", "boot_failed")
        assert [ps for ps in await sbx.provider.list_owned() if ps.sandbox_id == row.id] == []
        assert await SandboxJobs(sbx.ctx).sweep_orphans() == 0

    async def test_c6_manifest_files_are_the_library_output(self, sbx: Conformance) -> None:
        reply = await sbx.ensure(prompt_mode="automation", trigger_context_json=b'{"issue": 7}')
        home = sbx.home(reply)
        caps = sbx.provider.capabilities
        ps = sbx.ctx.handle(await _row(sbx, reply.sandbox.id))
        expected = build_manifest(
            ManifestInput(
                mode="automation",
                home_dir=home,
                repo_dir=f"{home}/workspace/app",
                prompt="Work carefully.",
                llm_base_url="http://127.0.0.1:9/v1",
                agent=AgentConfig(model_id="claude-sonnet-4.6"),
                ports=Ports(
                    router=ps.ports.router, agent=ps.ports.agent, api=ps.ports.api, vscode=ps.ports.vscode
                ),
                caps=Capabilities(docker=caps.docker, vscode=caps.vscode),
                trigger_context=b'{"issue": 7}',
            )
        )
        for f in expected.files:
            out = await sbx.exec(reply.sandbox.id, "base64", "-w0", f"{home}/{f.path}")
            assert base64.b64decode(out.stdout) == f.content, f.path
            mode = await sbx.exec(reply.sandbox.id, "stat", "-c", "%a", f"{home}/{f.path}")
            assert int(mode.stdout.strip(), 8) == f.mode_bits, f.path
        tools = await sbx.exec(reply.sandbox.id, "ls", f"{home}/.config/opencode/tools")
        names = sorted({n.rsplit(".", 1)[0] for n in tools.stdout.split()})
        assert names == sorted(t.name for t in tools_for_mode("automation"))
        row = await _row(sbx, reply.sandbox.id)
        assert row.manifest_digest == expected.digest

    async def test_c7_setup_artifact_restored_in_coding_mode_drops_setup_tools(
        self, sbx: Conformance
    ) -> None:
        setup = await sbx.ensure(prompt_mode="setup")
        home = sbx.home(setup)
        tools = await sbx.exec(setup.sandbox.id, "ls", f"{home}/.config/opencode/tools")
        assert "save_service_commands.ts" in tools.stdout.split()
        art = (await sbx.capture(setup.sandbox.id, reapply=True)).artifact
        coding = await sbx.ensure(restore_artifact_id=art.id, prompt_mode="coding")
        assert coding.restore_outcome == "restored"
        tools = await sbx.exec(coding.sandbox.id, "ls", f"{sbx.home(coding)}/.config/opencode/tools")
        assert "save_service_commands.ts" not in tools.stdout.split()
        assert "verify.ts" in tools.stdout.split()

    async def test_c8_env_reaches_exec_and_agent(self, sbx: Conformance) -> None:
        reply = await sbx.ensure()
        out = await sbx.exec(reply.sandbox.id, "printenv", "APP_MODE")
        assert out.stdout.strip() == "conformance"
        ids = await sbx.exec(reply.sandbox.id, "printenv", "PROLIFERATE_SANDBOX_ID")
        assert ids.stdout.strip() == reply.sandbox.id
        # The agent process sees the same env (its /proc environ, read inside the sandbox).
        agent_env = await sbx.exec(
            reply.sandbox.id, "bash", "-c",
            "for p in /proc/[0-9]*; do if tr '\\0' '\\n' < $p/cmdline 2>/dev/null | grep -q fake_agent; then"
            " tr '\\0' '\\n' < $p/environ; fi; done",
        )  # fmt: skip
        assert "APP_MODE=conformance" in agent_env.stdout.split("\n")

    async def test_c9_secret_files_0600_excluded_before_autostart(self, sbx: Conformance) -> None:
        secret = pb.SecretFile(
            workspace_path="app", file_path="config/.env.local", content=b"S3CRET=conformance-value\n"
        )
        reply = await sbx.ensure(
            secret_files=[secret],
            autostart_services=True,
            service_commands=[
                pb.ServiceCommand(
                    name="reader", command="cat config/.env.local; sleep 600", workspace_path="app"
                )
            ],
        )
        home = sbx.home(reply)
        path = f"{home}/workspace/app/config/.env.local"
        mode = await sbx.exec(reply.sandbox.id, "stat", "-c", "%a", path)
        assert mode.stdout.strip() == "600"
        ignored = await sbx.exec(
            reply.sandbox.id, "git", "-C", f"{home}/workspace/app", "check-ignore", "config/.env.local"
        )
        assert ignored.exit_code == 0
        status = await sbx.exec(
            reply.sandbox.id, "git", "-C", f"{home}/workspace/app", "status", "--porcelain"
        )
        assert status.stdout.strip() == ""

        async def logged() -> bool:
            out = await sbx.exec(
                reply.sandbox.id,
                "cat",
                "/tmp/proliferate/logs/reader.log"
                if sbx.case != "local-process"
                else f"{sbx.root}/sandboxes/{reply.sandbox.id}/tmp/proliferate/logs/reader.log",
            )
            return "S3CRET=conformance-value" in out.stdout

        await until(logged, timeout=30, interval=0.3)

    async def test_c10_exec_semantics(self, sbx: Conformance) -> None:
        reply = await sbx.ensure(repos=[])
        sid, home = reply.sandbox.id, sbx.home(reply)
        literal = await sbx.exec(sid, "echo", "$HOME;id`whoami`")
        assert literal.stdout == "$HOME;id`whoami`\n"
        cwd = await sbx.exec(sid, "pwd", cwd=f"{home}/workspace")
        assert cwd.stdout.strip() == f"{home}/workspace"
        slow = await sbx.exec(sid, "sleep", "30", timeout=1)
        assert slow.exit_code == 124 and slow.timed_out
        big = await sbx.exec(sid, "head", "-c", "40000", "/dev/zero")
        assert big.stdout_truncated and big.stdout.endswith("...[truncated]")
        assert len(big.stdout.encode()) <= 16 * 1024 + len("...[truncated]")
        with pytest.raises(RemoteError) as err:
            await sbx.exec(sid, "pwd", cwd="/etc")
        assert err.value.code == "unsafe_path"

    async def test_c11_read_files(self, sbx: Conformance) -> None:
        reply = await sbx.ensure()
        sid, home = reply.sandbox.id, sbx.home(reply)
        await sbx.exec(sid, "bash", "-c", f"mkdir -p {home}/workspace/app/.proliferate/.verification/sub && "
                       f"echo one > {home}/workspace/app/.proliferate/.verification/a.txt && "
                       f"echo two > {home}/workspace/app/.proliferate/.verification/sub/b.txt")  # fmt: skip
        chunks = await _read(sbx, sid, "app/.proliferate/.verification")
        files = {c.path: c.data for c in chunks if not c.skipped}
        assert files == {"a.txt": b"one\n", "sub/b.txt": b"two\n"}
        assert await _read(sbx, sid, "app/no-such-folder") == []
        capped = await _read(sbx, sid, "app/.proliferate/.verification", max_files=1)
        assert [c.skip_reason for c in capped if c.skipped] == ["max_files"]
        with pytest.raises(RemoteError) as err:
            await _read(sbx, sid, "../../../etc")
        assert err.value.code == "unsafe_path"


async def _read(sbx: Conformance, sid: str, folder: str, **limits: int) -> list[pb.FileChunk]:
    stub_call = sbx.client.stub(sandbox_pb2_grpc.SandboxServiceStub).ReadFiles
    request = pb.ReadFilesRequest(organization_id=sbx.org, sandbox_id=sid, folder=folder, **limits)
    with translate_errors("sandbox"):
        return [c async for c in stub_call(request, timeout=60, metadata=sbx.client.metadata())]


async def _row(sbx: Conformance, sandbox_id: str) -> object:
    from proliferate.sandbox.sandbox.repository import SandboxRepository

    async with sbx.ctx.db.unit_of_work() as session:
        return await SandboxRepository(session).get_unscoped(uuid.UUID(sandbox_id))


async def test_local_sandbox_rlimits(sbx: Conformance) -> None:
    """§5.9.5: NPROC 4096 and NOFILE 65536 for the sandbox's processes (local provider)."""
    if not sbx.local:
        pytest.skip(reason="rlimits are a local-provider rule")
    reply = await sbx.ensure(repos=[])
    from proliferate.sandbox.providers.local.provider import sandbox_rlimits

    limits = sandbox_rlimits()  # 4096 / 65536, or the host's hard limit when lower
    out = await sbx.exec(reply.sandbox.id, "bash", "-c", "ulimit -u; ulimit -n")
    assert out.stdout.split() == [str(limits["nproc"]), str(limits["nofile"])]
    user = await sbx.exec(reply.sandbox.id, "id", "-u")
    assert user.stdout.strip() != "0"
