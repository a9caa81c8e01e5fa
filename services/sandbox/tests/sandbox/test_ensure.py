from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import sqlalchemy as sa
from proliferate.kit.errors import RemoteError
from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from sandbox_support import Harness, ensure_request


async def rows(h: Harness, sql: str, **params: object) -> list[sa.Row[object]]:
    async with h.db.engine.connect() as conn:
        return list((await conn.execute(sa.text(sql), params)).all())


class TestEnsureSandbox:
    async def test_fresh_boot_writes_home_and_is_ready(self, service: Harness, org: str) -> None:
        secret = pb.SecretFile(
            workspace_path="app", file_path="config/.env.local", content=b"DB_PASSWORD=hunter2-secret"
        )
        reply = await service.call("EnsureSandbox", ensure_request(org, secret_files=[secret]))
        assert reply.sandbox.status == "ready"
        assert reply.restore_outcome == "fresh"
        assert reply.sandbox.opencode_url == reply.sandbox.preview_url + "/_proliferate/agent"
        box = next(iter(service.e2b.boxes.values()))
        files = box.files
        assert files["/home/user/workspace/app/config/.env.local"] == (b"DB_PASSWORD=hunter2-secret", 0o600)
        assert "/config/.env.local" in files["/home/user/workspace/app/.git/info/exclude"][0].decode()
        assert files["/tmp/proliferate/session.env"][1] == 0o600
        creds = json.loads(files["/tmp/proliferate/git-credentials.json"][0])
        assert list(creds) == ["https://git.example.test/acme/app"]
        meta = json.loads(files["/home/user/.proliferate/metadata.json"][0])
        assert meta["repo_dir"] == "/home/user/workspace/app"
        assert "/home/user/.config/opencode/opencode.json" in files
        clone = next(a for a in box.exec_log if a[:2] == ["git", "clone"])
        assert "https://git.example.test/acme/app.git" in clone and not any("ghs_" in a for a in clone)
        # session.env is the last file placed: its appearance starts the agent (CONTRACT.md)
        placed = [a for a in box.exec_log if a[:2] == ["python3", "-c"] and len(a) > 3]
        assert placed[-1][-1] == "/tmp/proliferate/session.env"

    async def test_recover_returns_the_same_sandbox(self, service: Harness, org: str) -> None:
        first = await service.call("EnsureSandbox", ensure_request(org))
        again = await service.call("EnsureSandbox", ensure_request(org, first.sandbox.session_id))
        assert again.recovered and again.sandbox.id == first.sandbox.id
        assert len(service.e2b.named("create")) == 1

    async def test_two_concurrent_ensures_create_one_sandbox(self, service: Harness, org: str) -> None:
        session = str(uuid.uuid4())
        a, b = await asyncio.gather(
            service.call("EnsureSandbox", ensure_request(org, session)),
            service.call("EnsureSandbox", ensure_request(org, session)),
        )
        assert a.sandbox.id == b.sandbox.id
        assert len(service.e2b.named("create")) == 1
        live = await rows(
            service,
            "SELECT id FROM sandboxes WHERE session_id = :s"
            " AND status IN ('provisioning','booting','ready','paused')",
            s=uuid.UUID(session),
        )
        assert len(live) == 1

    async def test_other_org_session_is_not_found(self, service: Harness, org: str, org_second: str) -> None:
        first = await service.call("EnsureSandbox", ensure_request(org))
        with pytest.raises(RemoteError) as err:
            await service.call("EnsureSandbox", ensure_request(org_second, first.sandbox.session_id))
        assert err.value.kind.value == "not_found"
        with pytest.raises(RemoteError) as err:
            await service.call(
                "GetSandbox", pb.GetSandboxRequest(organization_id=org_second, sandbox_id=first.sandbox.id)
            )
        assert err.value.code == "sandbox_not_found"

    @pytest.mark.parametrize(
        ("overrides", "code"),
        [
            ({"env": {"ANTHROPIC_BASE_URL": "http://evil"}}, "reserved_env_key"),
            ({"env": {"PROLIFERATE_GATEWAY_URL": "x"}}, "reserved_env_key"),
            (
                {"secret_files": [pb.SecretFile(workspace_path="app", file_path="../x", content=b"s")]},
                "unsafe_path",
            ),
            (
                {"secret_files": [pb.SecretFile(workspace_path="app", file_path="/etc/x", content=b"s")]},
                "unsafe_path",
            ),
            (
                {
                    "secret_files": [
                        pb.SecretFile(workspace_path="app", file_path=".git/hooks/x", content=b"s")
                    ]
                },
                "unsafe_path",
            ),
            (
                {
                    "repos": [
                        pb.RepoSpec(repo_id="a", clone_url="https://h/a.git", workspace_path="."),
                        pb.RepoSpec(repo_id="b", clone_url="https://h/b.git", workspace_path="b"),
                    ]
                },
                "invalid_repo_spec",
            ),
            (
                {"repos": [pb.RepoSpec(repo_id="a", clone_url="https://h/a.git", workspace_path="../up")]},
                "invalid_repo_spec",
            ),
            (
                {"repos": [pb.RepoSpec(repo_id="a", clone_url="https://h/a.git", branch="-x")]},
                "invalid_repo_spec",
            ),
            ({"repos": [pb.RepoSpec(repo_id="a", clone_url="https://u:p@h/a.git")]}, "invalid_repo_spec"),
            ({"prompt_mode": "wizard"}, "invalid_argument"),
            ({"trigger_context_json": b"not json"}, "invalid_argument"),
            ({"service_commands": [pb.ServiceCommand(name="../../etc", command="x")]}, "invalid_argument"),
        ],
    )
    async def test_bad_input_is_refused_before_any_provider_call(
        self, service: Harness, org: str, overrides: dict[str, object], code: str
    ) -> None:
        with pytest.raises(RemoteError) as err:
            await service.call("EnsureSandbox", ensure_request(org, **overrides))
        assert err.value.kind.value == "invalid_argument"
        assert err.value.code == code
        assert [c.name for c in service.e2b.calls if c.name != "list"] == []
        assert await rows(service, "SELECT id FROM sandboxes") == []

    async def test_missing_branch_falls_back_to_default_branch_noted(
        self, service: Harness, org: str
    ) -> None:
        repo = pb.RepoSpec(
            repo_id="r", clone_url="https://h/a.git", workspace_path="a", branch="missing-branch"
        )
        reply = await service.call("EnsureSandbox", ensure_request(org, repos=[repo]))
        assert reply.sandbox.status == "ready"
        assert any(s.name == "branch:r" and "not found" in s.detail for s in reply.boot.steps)

    async def test_clone_failure_fails_the_boot_and_removes_the_sandbox(
        self, service: Harness, org: str
    ) -> None:
        repo = pb.RepoSpec(repo_id="r", clone_url="https://h/fail-clone.git", workspace_path="a")
        request = ensure_request(org, repos=[repo])
        with pytest.raises(RemoteError) as err:
            await service.call("EnsureSandbox", request)
        assert err.value.code == "boot_failed"
        row = (await rows(service, "SELECT status, terminate_reason, error_code FROM sandboxes"))[0]
        assert tuple(row) == ("failed", "boot_failed", "boot_failed")
        assert [b.state for b in service.e2b.boxes.values()] == ["killed"]
