"""The Modal provider (sandbox-provider.md §8.1): sandboxes in the app
`MODAL_APP_NAME[-MODAL_APP_SUFFIX]`, named by our sandbox id, the router port encrypted.

Capabilities: memory snapshots (experimental API, 7-day retention), Docker, VS Code; no
pause. Filesystem snapshots are images (30-day TTL) with no delete API: deleting one only
marks the artifact.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from proliferate.kit.logs import get_logger
from proliferate.sandbox.providers.base import (
    DEFAULT_HOME,
    ROUTER_PORT,
    ArtifactKind,
    ArtifactRef,
    ArtifactUnusable,
    Capabilities,
    CapabilityUnsupported,
    CreateRequest,
    Endpoints,
    Health,
    Placement,
    ProviderArtifact,
    ProviderError,
    ProviderKind,
    ProviderSandbox,
    SandboxGone,
    SandboxRef,
)
from proliferate.sandbox.providers.modal.port import ModalPort
from proliferate.sandbox.providers.remote import RemoteProvider
from proliferate.sandbox.providers.retry import DELAYS, retrying, vendor_errors

log = get_logger("proliferate.sandbox.modal")

SUPERVISOR = (
    "/opt/proliferate/venv/bin/python",
    "-m",
    "proliferate.sandbox_mcp",
    "supervise",
    "--home",
    DEFAULT_HOME,
    "--tmp",
    "/tmp",  # noqa: S108 - inside the sandbox
)
CPU = 2.0
MEMORY_MIB = 4096
TUNNEL_TIMEOUT_S = 30
FS_SNAPSHOT_TIMEOUT_S = 55
FS_SNAPSHOT_TTL = timedelta(days=30)
MEMORY_TTL = timedelta(days=7)


def _errors() -> dict[str, tuple[type[BaseException], ...]]:
    from modal import exception as e

    return {
        "gone": (e.NotFoundError, e.SandboxTerminatedError, e.SandboxFilesystemNotFoundError),
        "permanent": (
            e.AuthError,
            e.InvalidError,
            e.PermissionDeniedError,
            e.AlreadyExistsError,
            e.RequestSizeError,
        ),
        "timeout": (e.TimeoutError, e.SandboxTimeoutError, e.ExecTimeoutError, TimeoutError),
        "retryable": (
            e.ConnectionError,
            e.InternalError,
            e.InternalFailure,
            e.ServiceError,
            e.ResourceExhaustedError,
            OSError,  # the gRPC transport underneath
        ),
        "other": (e.Error,),
    }


def modal_errors(operation: str) -> contextlib.AbstractContextManager[None]:
    return vendor_errors("modal", operation, _errors())


class ModalProvider(RemoteProvider):
    kind = ProviderKind.MODAL
    kind_name = "modal"
    supports_base_snapshots = True
    isolation: str | None = None
    placement: Placement | None = None

    def __init__(
        self, port: ModalPort, *, app_name: str, image_ref: str, retry_delays: Sequence[float] = DELAYS
    ) -> None:
        self.port = port
        self.namespace = app_name
        self.image_ref = image_ref
        self.capabilities = Capabilities(
            pause=False, auto_pause=False, memory_snapshot=True, docker=True, vscode=True
        )
        self.retry_delays = tuple(retry_delays)
        self._app: Any = None
        self._handles: dict[str, Any] = {}

    async def _app_handle(self) -> Any:
        if self._app is None:
            with modal_errors("app_lookup"):
                self._app = await self.port.app_lookup(self.namespace, create_if_missing=True)
        return self._app

    def handle(self, ref: SandboxRef) -> ProviderSandbox:
        return ProviderSandbox(sandbox_id=ref.sandbox_id, provider_sandbox_id=ref.provider_sandbox_id)

    async def _sandbox(self, ps: ProviderSandbox, operation: str) -> Any:
        cached = self._handles.get(ps.provider_sandbox_id)
        if cached is not None:
            return cached

        async def lookup() -> Any:
            with modal_errors(operation):
                return await self.port.sandbox_from_id(ps.provider_sandbox_id)

        sandbox = await retrying(lookup, self.retry_delays)
        self._handles[ps.provider_sandbox_id] = sandbox
        return sandbox

    # --- lifecycle ----------------------------------------------------------------------

    async def create(self, req: CreateRequest) -> ProviderSandbox:
        app = await self._app_handle()
        tags = {**req.labels, "proliferate_created_at": datetime.now(UTC).isoformat()}
        if req.source is not None and req.source.kind is ArtifactKind.MEMORY:
            with modal_errors("restore"):
                try:
                    sandbox = await self.port.sandbox_from_memory_snapshot(
                        req.source.provider_ref, name=req.sandbox_id
                    )
                except ProviderError:
                    raise
                except Exception as exc:
                    if type(exc).__name__ in ("NotFoundError", "SnapshotCreationError"):
                        raise ArtifactUnusable(
                            "modal", "expired", f"memory snapshot unusable: {exc}"
                        ) from None
                    raise
        else:
            image = await self._image(req)
            kwargs: dict[str, Any] = {
                "app": app,
                "name": req.sandbox_id,
                "tags": tags,
                "image": image,
                "env": dict(req.env),
                "timeout": req.timeout_s,
                "workdir": DEFAULT_HOME,
                "cpu": CPU,
                "memory": MEMORY_MIB,
                "encrypted_ports": [ROUTER_PORT],
                "experimental_options": {"enable_docker": True},
                "_experimental_enable_snapshot": True,
            }
            sandbox = await self._create_named(req.sandbox_id, kwargs)
        self._handles[sandbox.object_id] = sandbox
        return ProviderSandbox(
            sandbox_id=req.sandbox_id, provider_sandbox_id=str(sandbox.object_id), labels=tags
        )

    async def _image(self, req: CreateRequest) -> Any:
        if req.source is None:
            return self.port.image_from_registry(self.image_ref)
        try:
            with modal_errors("restore"):
                return await self.port.image_from_id(req.source.provider_ref)
        except SandboxGone:
            raise ArtifactUnusable("modal", "not_found", "the snapshot image is gone") from None

    async def _create_named(self, name: str, kwargs: dict[str, Any]) -> Any:
        """Modal rejects a duplicate name, so create may be retried: a retry that finds the
        name taken adopts the sandbox the first attempt made."""
        from modal import exception as e

        attempt = 0
        while True:
            try:
                with modal_errors("create"):
                    try:
                        return await self.port.sandbox_create(*SUPERVISOR, **kwargs)
                    except e.AlreadyExistsError:
                        return await self.port.sandbox_from_name(self.namespace, name)
            except ProviderError as exc:
                if not exc.retryable or attempt >= len(self.retry_delays) - 1:
                    raise
                import asyncio

                await asyncio.sleep(self.retry_delays[attempt])
                attempt += 1

    async def find(self, sandbox_id: str, provider_sandbox_id: str | None) -> ProviderSandbox | None:
        if not provider_sandbox_id:
            return None
        ps = ProviderSandbox(sandbox_id=sandbox_id, provider_sandbox_id=provider_sandbox_id)
        try:
            sandbox = await self._sandbox(ps, "find")
            with modal_errors("find"):
                code = await self.port.sandbox_poll(sandbox)
        except SandboxGone:
            return None
        if code is not None:
            self._handles.pop(provider_sandbox_id, None)
            return None
        return ps

    async def endpoints(self, ps: ProviderSandbox) -> Endpoints:
        sandbox = await self._sandbox(ps, "endpoints")

        async def tunnels() -> dict[int, Any]:
            with modal_errors("endpoints"):
                return await self.port.sandbox_tunnels(sandbox, timeout=TUNNEL_TIMEOUT_S)

        found = await retrying(tunnels, self.retry_delays)
        tunnel = found.get(ROUTER_PORT)
        if tunnel is None:
            raise ProviderError("modal", "endpoints", "the router port has no tunnel", retryable=True)
        return Endpoints(preview_url=str(tunnel.url))

    async def snapshot(self, ps: ProviderSandbox, kind: ArtifactKind) -> ProviderArtifact:
        sandbox = await self._sandbox(ps, "snapshot")
        now = datetime.now(UTC)
        if kind is ArtifactKind.MEMORY:
            with modal_errors("snapshot"):
                ref = await self.port.snapshot_memory(sandbox)
            return ProviderArtifact(ArtifactKind.MEMORY, ref, expires_at=now + MEMORY_TTL)
        if kind in (ArtifactKind.FILESYSTEM, ArtifactKind.BASE):
            with modal_errors("snapshot"):
                ref = await self.port.snapshot_filesystem(sandbox, timeout=FS_SNAPSHOT_TIMEOUT_S)
            return ProviderArtifact(kind, ref, expires_at=now + FS_SNAPSHOT_TTL)
        raise CapabilityUnsupported("modal", "pause")

    async def resume(self, ps: ProviderSandbox) -> ProviderSandbox:
        raise CapabilityUnsupported("modal", "resume")

    async def terminate(self, ps: ProviderSandbox) -> None:
        try:
            sandbox = await self._sandbox(ps, "terminate")

            async def stop() -> None:
                with modal_errors("terminate"):
                    await self.port.sandbox_terminate(sandbox)

            await retrying(stop, self.retry_delays)
        except SandboxGone:
            pass  # not found counts as success
        self._handles.pop(ps.provider_sandbox_id, None)

    async def list_alive(self, refs: Sequence[ProviderSandbox]) -> set[str]:
        """One listing of the app's running sandboxes; never touches a sandbox itself."""
        if not refs:
            return set()
        listed = await self._list()
        running = {str(sb.object_id) for sb in listed}
        return {ps.sandbox_id for ps in refs if ps.provider_sandbox_id in running}

    async def _list(self) -> list[Any]:
        app = await self._app_handle()
        app_id = await self.port.app_id(app)

        async def listing() -> list[Any]:
            with modal_errors("list"):
                return await self.port.sandbox_list(app_id=app_id, tags=None)

        return await retrying(listing, self.retry_delays)

    async def list_owned(self) -> list[ProviderSandbox]:
        owned = []
        for sandbox in await self._list():
            with modal_errors("list"):
                tags = await self.port.sandbox_tags(sandbox)
            sandbox_id = tags.get("proliferate_sandbox_id")
            if not sandbox_id:
                continue
            created = None
            with contextlib.suppress(ValueError, KeyError):
                created = datetime.fromisoformat(tags["proliferate_created_at"])
            owned.append(
                ProviderSandbox(
                    sandbox_id=sandbox_id,
                    provider_sandbox_id=str(sandbox.object_id),
                    created_at=created,
                    labels=tags,
                )
            )
        return owned

    async def delete_artifact(self, art: ArtifactRef) -> None:
        return None  # Modal images and memory snapshots expire on their own (no delete API)

    async def health(self) -> Health:
        try:
            self._app = None
            await self._app_handle()
        except ProviderError as exc:
            return Health(False, exc.message)
        except Exception as exc:
            return Health(False, f"{type(exc).__name__}")
        return Health(True, f"app {self.namespace}")

    # --- raw primitives for RemoteProvider ----------------------------------------------

    async def _exec_raw(
        self,
        ps: ProviderSandbox,
        argv: Sequence[str],
        *,
        cwd: str | None,
        env: Mapping[str, str],
        timeout_s: int,
    ) -> tuple[int, str, str]:
        sandbox = await self._sandbox(ps, "exec")
        with modal_errors("exec"):
            return await self.port.sandbox_exec(
                sandbox, list(argv), workdir=cwd, env=dict(env), timeout=timeout_s
            )

    async def _write_raw(self, ps: ProviderSandbox, path: str, data: bytes) -> None:
        sandbox = await self._sandbox(ps, "write_files")
        with modal_errors("write_files"):
            await self.port.fs_write_bytes(sandbox, data, path)

    async def _read_raw(self, ps: ProviderSandbox, path: str) -> bytes | None:
        sandbox = await self._sandbox(ps, "read_file")
        try:
            with modal_errors("read_file"):
                return await self.port.fs_read_bytes(sandbox, path)
        except SandboxGone:
            return None
