"""gRPC `proliferate.sandbox.v1.SandboxService`: thin adapters (decode, validate, call one
service method, map the result). Errors are domain errors; kit.rpc maps them to the wire."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from proliferate.protos.sandbox.v1 import sandbox_pb2_grpc
from proliferate.sandbox.context import SandboxContext
from proliferate.sandbox.errors import InvalidRequest, LimitsExceeded
from proliferate.sandbox.sandbox import requests, serial
from proliferate.sandbox.sandbox import schemas as s
from proliferate.sandbox.sandbox.ensure import EnsureService
from proliferate.sandbox.sandbox.operations import SandboxOperations
from proliferate.sandbox.sandbox.terminate import TerminateService
from proliferate.sandbox.snapshot.base import BaseSnapshotService
from proliferate.sandbox.snapshot.capture import CaptureService

PURPOSES = {
    pb.CaptureSnapshotRequest.SAVE: "save",
    pb.CaptureSnapshotRequest.PAUSE: "pause",
    pb.CaptureSnapshotRequest.MIGRATE: "migrate",
}


class SandboxServicer(sandbox_pb2_grpc.SandboxServiceServicer):
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.ensure_service = EnsureService(ctx)
        self.capture_service = CaptureService(ctx)
        self.terminator = TerminateService(ctx)
        self.operations = SandboxOperations(ctx)
        self.base_snapshots = BaseSnapshotService(ctx)

    def _caps(self, provider: str) -> Any:
        return (
            self.ctx.providers.providers[provider].capabilities
            if provider in self.ctx.providers.providers
            else None
        )

    async def EnsureSandbox(self, request: pb.EnsureSandboxRequest, context: Any) -> pb.EnsureSandboxResponse:
        spec = requests.ensure_spec(
            request, allow_insecure_git=self.ctx.settings.sandbox_allow_insecure_git_urls
        )
        result = await self.ensure_service.ensure(spec)
        return pb.EnsureSandboxResponse(
            sandbox=serial.sandbox(result.row, self._caps(result.row.provider)),
            recovered=result.recovered,
            resumed=result.resumed,
            restore_outcome=result.restore_outcome,
            fallback_reason=result.fallback_reason,
            agent_ready=result.agent_ready,
            boot=serial.boot_summary(result.report.as_dict(), result.report.total_ms()),
        )

    async def GetSandbox(self, request: pb.GetSandboxRequest, context: Any) -> pb.Sandbox:
        row = await self.operations.get(
            s.require_uuid(request.organization_id, "organization_id"),
            s.require_uuid(request.sandbox_id, "sandbox_id"),
        )
        return serial.sandbox(row, self._caps(row.provider))

    async def ListSandboxes(self, request: pb.ListSandboxesRequest, context: Any) -> pb.ListSandboxesResponse:
        org = s.require_uuid(request.organization_id, "organization_id")
        size = request.page_size or 50
        if size < 0 or size > requests.MAX_PAGE:
            raise InvalidRequest(f"page_size must be 1-{requests.MAX_PAGE}", field="page_size")
        rows = await self.operations.list_sandboxes(
            org,
            statuses=list(request.statuses),
            session_id=s.parse_uuid(request.session_id, "session_id", required=False),
            limit=size + 1,
            after=_decode_page(request.page_token),
        )
        token = _encode_page(rows[size - 1].created_at, rows[size - 1].id) if len(rows) > size else ""
        return pb.ListSandboxesResponse(
            sandboxes=[serial.sandbox(r) for r in rows[:size]], next_page_token=token
        )

    async def CheckSandboxes(
        self, request: pb.CheckSandboxesRequest, context: Any
    ) -> pb.CheckSandboxesResponse:
        org = s.require_uuid(request.organization_id, "organization_id")
        ids = [s.require_uuid(i, "sandbox_ids") for i in requests.check_ids(list(request.sandbox_ids))]
        alive = await self.operations.check(org, ids)
        return pb.CheckSandboxesResponse(alive_ids=[str(i) for i in alive])

    async def CaptureSnapshot(
        self, request: pb.CaptureSnapshotRequest, context: Any
    ) -> pb.CaptureSnapshotResponse:
        if len(request.idempotency_key) > 200:
            raise LimitsExceeded("idempotency_key is at most 200 characters")
        result = await self.capture_service.capture(
            s.require_uuid(request.organization_id, "organization_id"),
            s.require_uuid(request.sandbox_id, "sandbox_id"),
            purpose=PURPOSES.get(request.purpose, "save"),
            strict=request.scrub == pb.CaptureSnapshotRequest.STRICT,
            reapply=request.reapply,
            idempotency_key=request.idempotency_key or None,
        )
        return pb.CaptureSnapshotResponse(
            artifact=serial.artifact(result.artifact), sandbox_retained=result.sandbox_retained
        )

    async def TerminateSandbox(
        self, request: pb.TerminateSandboxRequest, context: Any
    ) -> pb.TerminateSandboxResponse:
        outcome = await self.terminator.terminate(
            s.require_uuid(request.organization_id, "organization_id"),
            s.require_uuid(request.sandbox_id, "sandbox_id"),
            requests.terminate_reason(request.reason),
        )
        return pb.TerminateSandboxResponse(accepted=outcome.accepted, status=outcome.status)

    async def ExecCommand(self, request: pb.ExecCommandRequest, context: Any) -> pb.ExecCommandResponse:
        argv = list(request.argv)
        s.check_argv(argv)
        env = dict(request.env)
        s.check_env(env)
        result = await self.operations.exec(
            s.require_uuid(request.organization_id, "organization_id"),
            s.require_uuid(request.sandbox_id, "sandbox_id"),
            argv,
            cwd=request.cwd,
            env=env,
            timeout_s=s.exec_timeout(request.timeout_seconds),
        )
        return pb.ExecCommandResponse(
            exit_code=result.exit_code,
            stdout=result.stdout,
            stderr=result.stderr,
            stdout_truncated=result.stdout_truncated,
            stderr_truncated=result.stderr_truncated,
            timed_out=result.timed_out,
        )

    async def ReadFiles(self, request: pb.ReadFilesRequest, context: Any) -> AsyncIterator[pb.FileChunk]:
        limits = requests.read_limits(request)
        async for chunk in self.operations.read_files(
            s.require_uuid(request.organization_id, "organization_id"),
            s.require_uuid(request.sandbox_id, "sandbox_id"),
            request.folder,
            limits,
        ):
            yield pb.FileChunk(
                path=chunk.path,
                data=chunk.data,
                offset=chunk.offset,
                eof=chunk.eof,
                size=chunk.size,
                skipped=chunk.skipped,
                skip_reason=chunk.skip_reason,
            )

    async def WriteSecretFiles(
        self, request: pb.WriteSecretFilesRequest, context: Any
    ) -> pb.WriteSecretFilesResponse:
        files = requests.secret_files(list(request.files))
        written = await self.operations.write_secret_files(
            s.require_uuid(request.organization_id, "organization_id"),
            s.require_uuid(request.sandbox_id, "sandbox_id"),
            files,
        )
        return pb.WriteSecretFilesResponse(paths=written)

    async def RefreshCredentials(
        self, request: pb.RefreshCredentialsRequest, context: Any
    ) -> pb.RefreshCredentialsResponse:
        repos = []
        for r in request.repos:
            s.check_clone_url(r.clone_url, allow_insecure=self.ctx.settings.sandbox_allow_insecure_git_urls)
            repos.append((r.clone_url, r.token))
        llm = (
            (request.llm.base_url, request.llm.api_key)
            if request.HasField("llm") and request.llm.base_url
            else None
        )
        replaced, count = await self.operations.refresh_credentials(
            s.require_uuid(request.organization_id, "organization_id"),
            s.require_uuid(request.sandbox_id, "sandbox_id"),
            repos=repos,
            clear_repo_tokens=request.clear_repo_tokens,
            sandbox_token=request.sandbox_token,
            llm=llm,
        )
        return pb.RefreshCredentialsResponse(sandbox_token_replaced=replaced, repo_credentials=count)

    async def TestServiceCommands(
        self, request: pb.TestServiceCommandsRequest, context: Any
    ) -> pb.TestServiceCommandsResponse:
        commands = requests.commands(
            list(request.commands), limit=s.MAX_SERVICE_COMMANDS, what="service commands", named=True
        )
        timeout = request.timeout_seconds or 30
        if timeout < 0 or timeout > 120:
            raise InvalidRequest("timeout_seconds must be 1-120", field="timeout_seconds")
        results = await self.operations.test_service_commands(
            s.require_uuid(request.organization_id, "organization_id"),
            s.require_uuid(request.sandbox_id, "sandbox_id"),
            commands,
            timeout,
        )
        return pb.TestServiceCommandsResponse(
            results=[
                pb.ServiceCommandResult(
                    name=r.name, exit_code=r.exit_code, output=r.output, timed_out=r.timed_out
                )
                for r in results
            ]
        )

    async def ListProviders(self, request: pb.ListProvidersRequest, context: Any) -> pb.ListProvidersResponse:
        statuses = await self.operations.providers()
        return pb.ListProvidersResponse(
            providers=[
                pb.ProviderInfo(
                    kind=st.provider.kind.value,
                    enabled=True,
                    is_default=st.is_default,
                    capabilities=serial.capabilities(st.provider.capabilities),
                    isolation=st.provider.isolation or "",
                    healthy=st.health.ok,
                    health_detail=st.health.detail,
                    namespace=st.provider.namespace,
                )
                for st in statuses
            ],
            default_provider=self.ctx.providers.default,
        )

    async def DescribeBaseSnapshot(
        self, request: pb.DescribeBaseSnapshotRequest, context: Any
    ) -> pb.BaseSnapshotSpec:
        spec = self.base_snapshots.describe(request.provider or self.ctx.providers.default)
        return pb.BaseSnapshotSpec(
            supported=spec.supported, version_key=spec.version_key, provider_app=spec.provider_app
        )

    async def CreateBaseSnapshot(
        self, request: pb.CreateBaseSnapshotRequest, context: Any
    ) -> pb.CreateBaseSnapshotResponse:
        if not request.version_key:
            raise InvalidRequest("version_key is required", field="version_key")
        artifact_id = await self.base_snapshots.create(
            request.provider or self.ctx.providers.default, request.version_key
        )
        return pb.CreateBaseSnapshotResponse(provider_snapshot_id=str(artifact_id))


def _encode_page(created_at: datetime, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode()


def _decode_page(token: str) -> tuple[datetime, uuid.UUID] | None:
    if not token:
        return None
    try:
        created, row_id = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        return datetime.fromisoformat(created), uuid.UUID(row_id)
    except ValueError:
        raise InvalidRequest("page_token is invalid", field="page_token") from None
