"""The E2B provider (sandbox-provider.md §8.1): `AsyncSandbox` from the `E2B_TEMPLATE`
template (which carries the OS image, the base layer and starts the supervisor), tagged with
our sandbox id in its metadata.

Capabilities: pause (the paused sandbox is the artifact, resumed with `connect`); no memory
snapshots, no base snapshots. Liveness lists, never connects (connect resumes).
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from proliferate.kit.ids import uuid7
from proliferate.sandbox.providers.base import (
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
from proliferate.sandbox.providers.e2b.port import E2BPort
from proliferate.sandbox.providers.remote import RemoteProvider
from proliferate.sandbox.providers.retry import DELAYS, retrying, vendor_errors

HANDLE_TIMEOUT_S = 60


def _errors() -> dict[str, tuple[type[BaseException], ...]]:
    from e2b import exceptions as e

    return {
        "gone": (e.NotFoundException, e.SandboxNotFoundException, e.FileNotFoundException),
        "permanent": (e.AuthenticationException, e.InvalidArgumentException, e.NotEnoughSpaceException),
        "timeout": (e.TimeoutException, TimeoutError, httpx.TimeoutException),
        "retryable": (
            e.RateLimitException,
            e.ServiceBusyException,
            e.SandboxUnreachableException,
            httpx.TransportError,
        ),
        "other": (e.SandboxException,),
    }


def e2b_errors(operation: str) -> contextlib.AbstractContextManager[None]:
    return vendor_errors("e2b", operation, _errors())


class E2BProvider(RemoteProvider):
    kind = ProviderKind.E2B
    kind_name = "e2b"
    supports_base_snapshots = False
    isolation: str | None = None
    placement: Placement | None = None

    def __init__(
        self, port: E2BPort, *, template: str, domain: str = "", retry_delays: Sequence[float] = DELAYS
    ) -> None:
        self.port = port
        self.template = template
        self.namespace = f"{domain or 'e2b.app'}/{template}"
        self.capabilities = Capabilities(pause=True)
        self.retry_delays = tuple(retry_delays)
        self._handles: dict[str, Any] = {}

    def handle(self, ref: SandboxRef) -> ProviderSandbox:
        return ProviderSandbox(sandbox_id=ref.sandbox_id, provider_sandbox_id=ref.provider_sandbox_id)

    def _metadata(self, sandbox_id: str) -> dict[str, str]:
        return {
            "proliferate_sandbox_id": sandbox_id,
            "proliferate_namespace": self.namespace,
            "proliferate_created_at": datetime.now(UTC).isoformat(),
        }

    async def _sandbox(self, ps: ProviderSandbox, operation: str) -> Any:
        """The SDK handle of a *running* sandbox (operations require `ready`, so the connect
        used after a service restart never resumes anything)."""
        cached = self._handles.get(ps.provider_sandbox_id)
        if cached is not None:
            return cached
        with e2b_errors(operation):
            sandbox = await self.port.connect(ps.provider_sandbox_id, timeout=HANDLE_TIMEOUT_S)
        self._handles[ps.provider_sandbox_id] = sandbox
        return sandbox

    # --- lifecycle ----------------------------------------------------------------------

    async def create(self, req: CreateRequest) -> ProviderSandbox:
        template = self.template
        if req.source is not None:
            if req.source.kind is not ArtifactKind.FILESYSTEM:
                raise CapabilityUnsupported("e2b", f"restore of a {req.source.kind.value} artifact")
            template = req.source.provider_ref
        try:
            with e2b_errors("create"):
                sandbox = await self.port.create(
                    template=template,
                    envs=dict(req.env),
                    metadata=self._metadata(req.sandbox_id),
                    timeout=req.timeout_s,
                )
        except SandboxGone as exc:
            if req.source is not None:
                raise ArtifactUnusable("e2b", "not_found", exc.message) from None
            raise ProviderError("e2b", "create", exc.message, retryable=False) from None
        sandbox_id = str(sandbox.sandbox_id)
        self._handles[sandbox_id] = sandbox
        return ProviderSandbox(sandbox_id=req.sandbox_id, provider_sandbox_id=sandbox_id)

    async def find(self, sandbox_id: str, provider_sandbox_id: str | None) -> ProviderSandbox | None:
        if not provider_sandbox_id:
            return None
        listed = await self._list(states=["running", "paused"])
        for info in listed:
            if str(info.sandbox_id) == provider_sandbox_id:
                paused = str(getattr(info.state, "value", info.state)) == "paused"
                return ProviderSandbox(
                    sandbox_id=sandbox_id, provider_sandbox_id=provider_sandbox_id, paused=paused
                )
        self._handles.pop(provider_sandbox_id, None)
        return None

    async def endpoints(self, ps: ProviderSandbox) -> Endpoints:
        sandbox = await self._sandbox(ps, "endpoints")
        host = self.port.get_host(sandbox, ROUTER_PORT)
        return Endpoints(preview_url=f"https://{host}")

    async def snapshot(self, ps: ProviderSandbox, kind: ArtifactKind) -> ProviderArtifact:
        sandbox = await self._sandbox(ps, "snapshot")
        if kind is ArtifactKind.PAUSE:
            with e2b_errors("pause"):
                await self.port.pause(sandbox)
            self._handles.pop(ps.provider_sandbox_id, None)
            return ProviderArtifact(ArtifactKind.PAUSE, f"{ps.provider_sandbox_id}:pause:{uuid7()}")
        if kind is ArtifactKind.FILESYSTEM:
            with e2b_errors("snapshot"):
                ref = await self.port.create_snapshot(sandbox)
            return ProviderArtifact(ArtifactKind.FILESYSTEM, ref)
        raise CapabilityUnsupported("e2b", f"{kind.value} snapshot")

    async def resume(self, ps: ProviderSandbox) -> ProviderSandbox:
        with e2b_errors("resume"):
            sandbox = await self.port.connect(ps.provider_sandbox_id, timeout=HANDLE_TIMEOUT_S)
        self._handles[ps.provider_sandbox_id] = sandbox
        return ps

    async def terminate(self, ps: ProviderSandbox) -> None:
        async def kill() -> None:
            with e2b_errors("terminate"):
                await self.port.kill(ps.provider_sandbox_id)  # False = not found = success

        with contextlib.suppress(SandboxGone):
            await retrying(kill, self.retry_delays)
        self._handles.pop(ps.provider_sandbox_id, None)

    async def _list(self, *, states: list[str]) -> list[Any]:
        async def listing() -> list[Any]:
            with e2b_errors("list"):
                return await self.port.list(metadata={"proliferate_namespace": self.namespace}, states=states)

        return await retrying(listing, self.retry_delays)

    async def list_alive(self, refs: Sequence[ProviderSandbox]) -> set[str]:
        """A listing (running and paused), never `connect`: checking must not resume anything.
        A listing error raises; it never means "none alive"."""
        if not refs:
            return set()
        listed = {str(info.sandbox_id) for info in await self._list(states=["running", "paused"])}
        return {ps.sandbox_id for ps in refs if ps.provider_sandbox_id in listed}

    async def list_owned(self) -> list[ProviderSandbox]:
        owned = []
        for info in await self._list(states=["running", "paused"]):
            metadata = dict(getattr(info, "metadata", {}) or {})
            sandbox_id = metadata.get("proliferate_sandbox_id")
            if not sandbox_id:
                continue
            created = getattr(info, "started_at", None)
            owned.append(
                ProviderSandbox(
                    sandbox_id=sandbox_id, provider_sandbox_id=str(info.sandbox_id), created_at=created
                )
            )
        return owned

    async def delete_artifact(self, art: ArtifactRef) -> None:
        if art.kind is not ArtifactKind.FILESYSTEM:
            return
        try:
            with e2b_errors("delete_artifact"):
                await self.port.delete_snapshot(art.provider_ref)
        except SandboxGone:
            pass

    async def health(self) -> Health:
        try:
            await self._list(states=["running"])
        except ProviderError as exc:
            return Health(False, exc.message)
        except Exception as exc:
            return Health(False, type(exc).__name__)
        return Health(True, f"template {self.template}")

    # --- raw primitives -----------------------------------------------------------------

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
        with e2b_errors("exec"):
            return await self.port.run(
                sandbox, shlex.join(argv), envs=dict(env), cwd=cwd, timeout=float(timeout_s)
            )

    async def _write_raw(self, ps: ProviderSandbox, path: str, data: bytes) -> None:
        sandbox = await self._sandbox(ps, "write_files")
        with e2b_errors("write_files"):
            await self.port.write(sandbox, path, data)

    async def _read_raw(self, ps: ProviderSandbox, path: str) -> bytes | None:
        sandbox = await self._sandbox(ps, "read_file")
        try:
            with e2b_errors("read_file"):
                return await self.port.read(sandbox, path)
        except SandboxGone:
            return None
