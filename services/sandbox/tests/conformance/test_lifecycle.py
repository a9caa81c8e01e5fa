"""Conformance C12-C21: snapshots, scrub, freeze, freshness, credentials, concurrency, recovery,
termination and liveness."""

from __future__ import annotations

import asyncio
import json
import tarfile
import uuid
from typing import Any

import zstandard
from conformance_support import REPO_TOKEN, Conformance, ToolGateway, until
from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from proliferate.sandbox.providers.base import SandboxRef
from proliferate.sandbox.providers.local import processes

C = pb.CaptureSnapshotRequest
SECRET = pb.SecretFile(
    workspace_path="app", file_path=".env.local", content=b"TOKEN=conformance-secret-file\n"
)


def clone_requests(sbx: Conformance) -> int:
    return sum(1 for path in sbx.git.requests if path.endswith("/info/refs") and "/app.git" in path)


async def archive_names(sbx: Conformance, artifact_id: str) -> list[str]:
    async with sbx.ctx.db.engine.connect() as conn:
        import sqlalchemy as sa

        ref = (
            await conn.execute(
                sa.text("SELECT provider_ref FROM snapshot_artifacts WHERE id = :id"),
                {"id": uuid.UUID(artifact_id)},
            )
        ).scalar_one()
    with open(sbx.root / "snapshots" / ref, "rb") as raw:
        reader = zstandard.ZstdDecompressor().stream_reader(raw)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            return [m.name for m in tar]


class TestSnapshots:
    async def test_c12_filesystem_round_trip_without_cloning(self, sbx: Conformance) -> None:
        booted = await sbx.ensure()
        home = sbx.home(booted)
        await sbx.exec(booted.sandbox.id, "bash", "-c", f"echo marker-42 > {home}/workspace/app/marker.txt")
        art = (await sbx.capture(booted.sandbox.id, purpose=C.SAVE, reapply=True)).artifact
        assert (art.kind, art.status) == ("filesystem", "available")
        await sbx.terminate(booted.sandbox.id)
        before = clone_requests(sbx)
        restored = await sbx.ensure(session=booted.sandbox.session_id, restore_artifact_id=art.id)
        assert restored.restore_outcome == "restored"
        rhome = sbx.home(restored)
        assert (await sbx.read(restored.sandbox.id, f"{rhome}/workspace/app/marker.txt")) == "marker-42\n"
        meta = json.loads(await sbx.read(restored.sandbox.id, f"{rhome}/.proliferate/metadata.json"))
        assert meta["repo_dir"].endswith("/workspace/app")
        assert clone_requests(sbx) == before

    async def test_c13_scrub_keeps_secrets_out_and_puts_them_back(self, sbx: Conformance) -> None:
        booted = await sbx.ensure(secret_files=[SECRET])
        home = sbx.home(booted)
        await sbx.exec(
            booted.sandbox.id,
            "bash",
            "-c",
            "echo '{}' > /tmp/.proliferate_env.json" if not sbx.local else "true",
        )
        art = (await sbx.capture(booted.sandbox.id, purpose=C.SAVE, scrub=C.STRICT, reapply=True)).artifact
        assert art.scrubbed
        # Back in the source sandbox right after the capture.
        assert "conformance-secret-file" in await sbx.read(
            booted.sandbox.id, f"{home}/workspace/app/.env.local"
        )
        env = await sbx.exec(booted.sandbox.id, "printenv", "APP_MODE")
        assert env.stdout.strip() == "conformance"
        if sbx.local:
            names = await archive_names(sbx, art.id)
            assert "workspace/app/.env.local" not in names and "workspace/app/README.md" in names
            assert not any(
                n.endswith(("session.env", "git-credentials.json", ".proliferate_env.json")) for n in names
            )
        restored = await sbx.ensure(restore_artifact_id=art.id, secret_files=[])
        missing = await sbx.exec(
            restored.sandbox.id, "test", "-e", f"{sbx.home(restored)}/workspace/app/.env.local"
        )
        assert missing.exit_code == 1

    async def test_c14_capture_while_writing_and_a_tool_call_in_flight(
        self, sbx: Conformance, tool_gateway: ToolGateway, conformance_factory: Any
    ) -> None:
        sbx = await conformance_factory(sbx.case, SANDBOX_CALLBACK_BASE_URL=tool_gateway.url)
        script = json.dumps(
            [{"tool": "verify", "args": {"folder": ".proliferate/.verification"}, "reply": "verified"}]
        )
        booted = await sbx.ensure(env={"APP_MODE": "conformance", "FAKE_AGENT_SCRIPT": script})
        home = sbx.home(booted)
        sid, token = booted.sandbox.id, None
        row = await sbx.get(sid)
        del row
        # A process writing continuously.
        await sbx.exec(
            sid,
            "bash",
            "-c",
            f"nohup bash -c 'while true; do date +%s%N >> {home}/workspace/app/ticks; sleep 0.01; done'"
            " >/dev/null 2>&1 &",
        )
        await until(lambda: sbx.exec(sid, "test", "-s", f"{home}/workspace/app/ticks"), timeout=10)
        # A tool callback in flight: the gateway is slow, then fails once (the wrapper retries).
        tool_gateway.delay_s = 1.0
        tool_gateway.script = [503]
        session_token = await _session_token(sbx, booted)
        async with __import__("httpx").AsyncClient(timeout=120) as client:
            headers = {"Authorization": f"Bearer {session_token}"}
            created = await client.post(f"{booted.sandbox.opencode_url}/session", json={}, headers=headers)
            prompt = asyncio.create_task(
                client.post(
                    f"{booted.sandbox.opencode_url}/session/{created.json()['id']}/message",
                    json={"parts": [{"type": "text", "text": "verify"}]},
                    headers=headers,
                )
            )
            await until(lambda: tool_gateway.seen, timeout=30)
            art = (await sbx.capture(sid, purpose=C.SAVE, scrub=C.BEST_EFFORT, reapply=True)).artifact
            reply = await prompt
        assert art.status == "available"
        assert reply.status_code == 200
        tool = next(p for p in reply.json()["parts"] if p.get("tool") == "verify")
        assert "tool ok" in tool["state"]["output"]
        assert len(tool_gateway.seen) == 2 and tool_gateway.seen[0]["body"] == tool_gateway.seen[1]["body"]
        first = int((await sbx.exec(sid, "wc", "-l", f"{home}/workspace/app/ticks")).stdout.split()[0])
        await asyncio.sleep(0.5)
        second = int((await sbx.exec(sid, "wc", "-l", f"{home}/workspace/app/ticks")).stdout.split()[0])
        assert second > first  # the writer runs again after the thaw
        del token

    async def test_c15_freshness_pull_when_due(self, sbx: Conformance, conformance_factory: Any) -> None:
        due = await conformance_factory(
            sbx.case, SANDBOX_GIT_PULL_ON_RESTORE="true", SANDBOX_GIT_PULL_CADENCE_SECONDS="0"
        )
        booted = await due.ensure(repos=[due.repo("fresh", "fresh")])
        art = (await due.capture(booted.sandbox.id, reapply=True)).artifact
        due.git.commit("fresh", "README.md", "v2\n")
        restored = await due.ensure(restore_artifact_id=art.id, repos=[due.repo("fresh", "fresh")])
        assert (
            await due.read(restored.sandbox.id, f"{due.home(restored)}/workspace/fresh/README.md")
        ) == "v2\n"
        # Within the cadence: no pull.
        later = await conformance_factory(
            sbx.case,
            root=due.root,
            SANDBOX_GIT_PULL_ON_RESTORE="true",
            SANDBOX_GIT_PULL_CADENCE_SECONDS="3600",
        )
        later.org = due.org
        due.git.commit("fresh", "README.md", "v3\n")
        art2 = (await later.capture(restored.sandbox.id, reapply=True)).artifact
        again = await later.ensure(restore_artifact_id=art2.id, repos=[later.repo("fresh", "fresh")])
        assert (
            await later.read(again.sandbox.id, f"{later.home(again)}/workspace/fresh/README.md")
        ) == "v2\n"
        # A failing pull keeps the boot ok and the timestamp unchanged.
        meta = json.loads(
            await due.read(restored.sandbox.id, f"{due.home(restored)}/.proliferate/metadata.json")
        )
        art3 = (await due.capture(restored.sandbox.id, reapply=True)).artifact
        broken = await due.ensure(
            restore_artifact_id=art3.id,
            repos=[due.repo("fresh", "fresh", token="ghs_bad_" + uuid.uuid4().hex)],
        )
        assert broken.sandbox.status == "ready"
        assert any(s.name == "pull:repo-fresh" and s.status == "failed" for s in broken.boot.steps)
        meta3 = json.loads(
            await due.read(broken.sandbox.id, f"{due.home(broken)}/.proliferate/metadata.json")
        )
        assert meta3["last_git_fetch_at"] == meta["last_git_fetch_at"]

    async def test_c16_credentials_rewritten_on_every_restore(self, sbx: Conformance) -> None:
        booted = await sbx.ensure()
        art = (await sbx.capture(booted.sandbox.id, reapply=True)).artifact
        restored = await sbx.ensure(restore_artifact_id=art.id)
        creds_path = "/tmp/proliferate/git-credentials.json" if sbx.case != "local-process" else None
        if creds_path is None:
            creds = (
                sbx.root / "sandboxes" / restored.sandbox.id / "tmp/proliferate/git-credentials.json"
            ).read_text()
        else:
            creds = await sbx.read(restored.sandbox.id, creds_path)
        assert REPO_TOKEN in creds
        pulled = await sbx.exec(
            restored.sandbox.id, "git", "-C", f"{sbx.home(restored)}/workspace/app", "pull", "--ff-only", "-q"
        )
        assert pulled.exit_code == 0, pulled.stderr
        config = await sbx.read(restored.sandbox.id, f"{sbx.home(restored)}/workspace/app/.git/config")
        assert REPO_TOKEN not in config


class TestLifecycle:
    async def test_c17_two_concurrent_ensures_one_sandbox(self, sbx: Conformance) -> None:
        session = str(uuid.uuid4())
        a, b = await asyncio.gather(sbx.ensure(session=session), sbx.ensure(session=session))
        assert a.sandbox.id == b.sandbox.id
        owned = [ps for ps in await sbx.provider.list_owned() if ps.sandbox_id == a.sandbox.id]
        assert len(owned) == 1
        listed = await sbx.call(
            "ListSandboxes", pb.ListSandboxesRequest(organization_id=sbx.org, session_id=session)
        )
        assert len(listed.sandboxes) == 1

    async def test_c18_recover_after_a_service_restart(
        self, sbx: Conformance, conformance_factory: Any
    ) -> None:
        booted = await sbx.ensure()
        restarted = await conformance_factory(sbx.case, root=sbx.root)
        restarted.org = sbx.org
        again = await restarted.ensure(session=booted.sandbox.session_id)
        assert again.recovered and again.sandbox.id == booted.sandbox.id and again.agent_ready
        health = await restarted.http(again.sandbox, "GET", "/_proliferate/mcp/api/health", None)
        assert health.status_code == 200

    async def test_c19_replace_a_sandbox_killed_out_of_band(self, sbx: Conformance) -> None:
        booted = await sbx.ensure()
        await _kill(sbx, booted.sandbox.id)
        again = await sbx.ensure(session=booted.sandbox.session_id)
        assert (
            not again.recovered and again.sandbox.id != booted.sandbox.id and again.sandbox.status == "ready"
        )
        old = await sbx.get(booted.sandbox.id)
        assert (old.status, old.terminate_reason) == ("terminated", "lost")

    async def test_c20_terminate_is_idempotent_and_final(self, sbx: Conformance) -> None:
        booted = await sbx.ensure()
        first = await sbx.terminate(booted.sandbox.id)
        second = await sbx.terminate(booted.sandbox.id)
        unknown = await sbx.terminate(str(uuid.uuid4()))
        assert (first.status, second.status, unknown.status) == ("terminated", "terminated", "")
        import httpx

        try:
            answered = (
                await sbx.http(booted.sandbox, "GET", "/_proliferate/mcp/api/health", None)
            ).status_code
        except httpx.HTTPError:
            answered = None
        assert answered is None
        ps = sbx.provider.handle(SandboxRef(booted.sandbox.id, booted.sandbox.id))
        assert await sbx.provider.list_alive([ps]) == set()
        check = await sbx.call(
            "CheckSandboxes",
            pb.CheckSandboxesRequest(organization_id=sbx.org, sandbox_ids=[booted.sandbox.id]),
        )
        assert list(check.alive_ids) == []

    async def test_c21_list_alive_has_no_side_effects(self, sbx: Conformance) -> None:
        booted = await sbx.ensure()
        paused = await sbx.capture(booted.sandbox.id, purpose=C.PAUSE)
        assert paused.sandbox_retained == sbx.provider.capabilities.pause
        assert await sbx.provider.list_alive([]) == set()
        row = await _row(sbx, booted.sandbox.id)
        ps = sbx.ctx.handle(row)
        for _ in range(2):
            assert await sbx.provider.list_alive([ps]) == {booted.sandbox.id}
            check = await sbx.call(
                "CheckSandboxes",
                pb.CheckSandboxesRequest(organization_id=sbx.org, sandbox_ids=[booted.sandbox.id]),
            )
            assert list(check.alive_ids) == [booted.sandbox.id]
        if sbx.provider.capabilities.pause:
            assert (await sbx.get(booted.sandbox.id)).status == "paused"
            if sbx.local:
                root = processes.root_alive(
                    sbx.root / "sandboxes" / booted.sandbox.id / "run" / "supervisor.pid"
                )
                assert root is not None and processes.state(root) == "T"


async def _row(sbx: Conformance, sandbox_id: str) -> Any:
    from proliferate.sandbox.sandbox.repository import SandboxRepository

    async with sbx.ctx.db.unit_of_work() as session:
        return await SandboxRepository(session).get_unscoped(uuid.UUID(sandbox_id))


async def _kill(sbx: Conformance, sandbox_id: str) -> None:
    """Out of band: what an OOM kill or a provider incident does (the row is not told)."""
    if sbx.local:
        root = processes.root_alive(sbx.root / "sandboxes" / sandbox_id / "run" / "supervisor.pid")
        await asyncio.to_thread(processes.kill_tree, sandbox_id, root, 2.0)
    else:
        row = await _row(sbx, sandbox_id)
        await sbx.provider.terminate(sbx.ctx.handle(row))


async def _session_token(sbx: Conformance, booted: pb.EnsureSandboxResponse) -> str:
    """The sandbox token the boot injected (read back from session.env, as the gateway knows it)."""
    from proliferate.sandbox.sandbox.home import parse_session_env

    if sbx.case == "local-process":
        raw = (sbx.root / "sandboxes" / booted.sandbox.id / "tmp/proliferate/session.env").read_bytes()
    else:
        raw = (await sbx.read(booted.sandbox.id, "/tmp/proliferate/session.env")).encode()
    return parse_session_env(raw)["SANDBOX_MCP_AUTH_TOKEN"]
