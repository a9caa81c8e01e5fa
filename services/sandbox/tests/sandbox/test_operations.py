"""In-sandbox operations over gRPC (exec, files, secret files, credentials, service commands,
providers) and the secrets rule of §10 item 7, on the E2B provider's SDK fake."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa
from proliferate.kit.errors import RemoteError
from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from sandbox_support import Harness, ensure_request


class TestOperations:
    async def test_exec_needs_a_ready_sandbox_of_the_org(
        self, service: Harness, org: str, org_second: str
    ) -> None:
        booted = await service.call("EnsureSandbox", ensure_request(org))
        out = await service.call(
            "ExecCommand",
            pb.ExecCommandRequest(organization_id=org, sandbox_id=booted.sandbox.id, argv=["git", "status"]),
        )
        assert out.exit_code == 0
        for request, code in [
            (
                pb.ExecCommandRequest(
                    organization_id=org_second, sandbox_id=booted.sandbox.id, argv=["true"]
                ),
                "sandbox_not_found",
            ),
            (
                pb.ExecCommandRequest(organization_id=org, sandbox_id=booted.sandbox.id, argv=[]),
                "invalid_argument",
            ),
            (
                pb.ExecCommandRequest(organization_id=org, sandbox_id=booted.sandbox.id, argv=["x" * 70000]),
                "limits_exceeded",
            ),
            (
                pb.ExecCommandRequest(
                    organization_id=org, sandbox_id=booted.sandbox.id, argv=["true"], timeout_seconds=601
                ),
                "limits_exceeded",
            ),
            (
                pb.ExecCommandRequest(
                    organization_id=org, sandbox_id=booted.sandbox.id, argv=["true"], cwd="/etc"
                ),
                "unsafe_path",
            ),
        ]:
            with pytest.raises(RemoteError) as err:
                await service.call("ExecCommand", request)
            assert err.value.code == code
        await service.call(
            "TerminateSandbox", pb.TerminateSandboxRequest(organization_id=org, sandbox_id=booted.sandbox.id)
        )
        with pytest.raises(RemoteError) as err:
            await service.call(
                "ExecCommand",
                pb.ExecCommandRequest(organization_id=org, sandbox_id=booted.sandbox.id, argv=["true"]),
            )
        assert err.value.code == "sandbox_terminated"

    async def test_write_secret_files_mid_session(self, service: Harness, org: str) -> None:
        booted = await service.call("EnsureSandbox", ensure_request(org))
        reply = await service.call(
            "WriteSecretFiles",
            pb.WriteSecretFilesRequest(
                organization_id=org,
                sandbox_id=booted.sandbox.id,
                files=[pb.SecretFile(workspace_path="app", file_path="api/.env", content=b"K=v-secret-123")],
            ),
        )
        assert list(reply.paths) == ["app/api/.env"]
        box = next(iter(service.e2b.boxes.values()))
        assert box.files["/home/user/workspace/app/api/.env"] == (b"K=v-secret-123", 0o600)
        async with service.db.engine.connect() as conn:
            paths = (await conn.execute(sa.text("SELECT secret_file_paths FROM sandboxes"))).scalar_one()
        assert paths == ["app/api/.env"]

    async def test_refresh_credentials_replaces_tokens(self, service: Harness, org: str) -> None:
        booted = await service.call("EnsureSandbox", ensure_request(org))
        box = next(iter(service.e2b.boxes.values()))
        new_token, new_repo = "sbx-new-" + uuid.uuid4().hex, "ghs_" + uuid.uuid4().hex
        reply = await service.call(
            "RefreshCredentials",
            pb.RefreshCredentialsRequest(
                organization_id=org,
                sandbox_id=booted.sandbox.id,
                sandbox_token=new_token,
                repos=[
                    pb.RepoCredential(
                        repo_id="repo-1", clone_url="https://git.example.test/acme/app.git", token=new_repo
                    )
                ],
            ),
        )
        assert reply.sandbox_token_replaced and reply.repo_credentials == 1
        env = box.files["/tmp/proliferate/session.env"][0].decode()
        assert f"SANDBOX_MCP_AUTH_TOKEN={new_token}" in env and "APP_MODE=test" in env
        creds = json.loads(box.files["/tmp/proliferate/git-credentials.json"][0])
        assert creds["https://git.example.test/acme/app"]["password"] == new_repo

    async def test_read_files_streams_relative_paths(self, service: Harness, org: str) -> None:
        booted = await service.call("EnsureSandbox", ensure_request(org))
        box = next(iter(service.e2b.boxes.values()))
        box.files["/home/user/workspace/app/.proliferate/.verification/a.png"] = (b"\x89PNG" * 10, 0o644)
        stub = service.stub
        chunks = [
            c
            async for c in stub.ReadFiles(
                pb.ReadFilesRequest(
                    organization_id=org, sandbox_id=booted.sandbox.id, folder="app/.proliferate/.verification"
                ),
                metadata=service.client.metadata(),
            )
        ]
        assert [(c.path, c.data) for c in chunks] == [("a.png", b"\x89PNG" * 10)]

    async def test_test_service_commands_captures_output(self, service: Harness, org: str) -> None:
        booted = await service.call("EnsureSandbox", ensure_request(org))
        reply = await service.call(
            "TestServiceCommands",
            pb.TestServiceCommandsRequest(
                organization_id=org,
                sandbox_id=booted.sandbox.id,
                commands=[pb.ServiceCommand(name="web", command="npm run dev", workspace_path="app")],
                timeout_seconds=5,
            ),
        )
        [result] = reply.results
        assert result.name == "web" and result.exit_code == 0
        box = next(iter(service.e2b.boxes.values()))
        assert ["bash", "-c", "npm run dev 2>&1"] in box.exec_log

    async def test_list_providers(self, service: Harness) -> None:
        reply = await service.call("ListProviders", pb.ListProvidersRequest())
        kinds = {p.kind: p for p in reply.providers}
        assert reply.default_provider == "e2b" and set(kinds) == {"e2b", "modal"}
        assert kinds["e2b"].capabilities.pause and not kinds["e2b"].capabilities.memory_snapshot
        assert kinds["modal"].capabilities.memory_snapshot and kinds["modal"].capabilities.docker
        assert all(p.healthy for p in reply.providers)

    async def test_list_sandboxes_pages_within_the_org(
        self, service: Harness, org: str, org_second: str
    ) -> None:
        for _ in range(3):
            await service.call("EnsureSandbox", ensure_request(org))
        await service.call("EnsureSandbox", ensure_request(org_second))
        first = await service.call("ListSandboxes", pb.ListSandboxesRequest(organization_id=org, page_size=2))
        second = await service.call(
            "ListSandboxes",
            pb.ListSandboxesRequest(organization_id=org, page_size=2, page_token=first.next_page_token),
        )
        ids = [s.id for s in first.sandboxes] + [s.id for s in second.sandboxes]
        assert len(ids) == len(set(ids)) == 3 and second.next_page_token == ""


class TestSecrets:
    async def test_no_secret_in_rows_events_or_errors(self, service_factory: object, org: str) -> None:
        h: Harness = await service_factory()  # type: ignore[operator]
        request = ensure_request(
            org,
            secret_files=[
                pb.SecretFile(workspace_path="app", file_path=".env", content=b"PW=secret-file-content-xyz")
            ],
        )
        secrets = [
            request.sandbox_token,
            request.llm.api_key,
            request.repos[0].token,
            "secret-file-content-xyz",
        ]
        booted = await h.call("EnsureSandbox", request)
        await h.call(
            "CaptureSnapshot",
            pb.CaptureSnapshotRequest(organization_id=org, sandbox_id=booted.sandbox.id, reapply=True),
        )
        bad = ensure_request(
            org,
            repos=[
                pb.RepoSpec(
                    repo_id="r", clone_url="https://h/fail-clone.git", token=secrets[2], workspace_path="x"
                )
            ],
        )
        with pytest.raises(RemoteError) as err:
            await h.call("EnsureSandbox", bad)
        assert not any(s in err.value.message for s in secrets)
        await h.call(
            "TerminateSandbox", pb.TerminateSandboxRequest(organization_id=org, sandbox_id=booted.sandbox.id)
        )
        async with h.db.engine.connect() as conn:
            rows = []
            for table in ("sandboxes", "snapshot_artifacts"):
                rows += (await conn.execute(sa.text(f"SELECT * FROM {table}"))).all()
            dump = "\n".join(str(tuple(r)) for r in rows)
            payloads = [
                bytes(r[0]) for r in (await conn.execute(sa.text("SELECT payload FROM outbox"))).all()
            ]
        for secret in secrets:
            assert secret not in dump
            assert not any(secret.encode() in p for p in payloads)
        # The virtual key and sandbox token reached the sandbox only through session.env.
        box = next(iter(h.e2b.boxes.values()))
        assert secrets[0] in box.files["/tmp/proliferate/session.env"][0].decode()
        assert not any(secrets[0] in " ".join(map(str, c.args)) for c in h.e2b.named("run"))
