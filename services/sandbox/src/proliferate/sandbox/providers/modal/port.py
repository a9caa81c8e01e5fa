"""`ModalPort`: the only place the `modal` SDK is called (the transport seam).

Each method is one SDK call with the SDK's own argument names; the provider decides the
arguments and maps errors. Tests replace the port with a fake that records every call and
checks its arguments against the SDK's real signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class ModalPort(Protocol):
    async def app_lookup(self, name: str, *, create_if_missing: bool) -> Any: ...

    def image_from_registry(self, tag: str) -> Any: ...

    async def image_from_id(self, image_id: str) -> Any: ...

    async def sandbox_create(self, *entrypoint: str, **kwargs: Any) -> Any: ...

    async def sandbox_from_id(self, sandbox_id: str) -> Any: ...

    async def sandbox_from_name(self, app_name: str, name: str) -> Any: ...

    async def sandbox_list(self, *, app_id: str | None, tags: dict[str, str] | None) -> list[Any]: ...

    async def sandbox_poll(self, sandbox: Any) -> int | None: ...

    async def sandbox_tags(self, sandbox: Any) -> dict[str, str]: ...

    async def sandbox_tunnels(self, sandbox: Any, *, timeout: int) -> dict[int, Any]: ...

    async def sandbox_exec(
        self,
        sandbox: Any,
        argv: Sequence[str],
        *,
        workdir: str | None,
        env: dict[str, str] | None,
        timeout: int,
    ) -> tuple[int, str, str]: ...

    async def fs_write_bytes(self, sandbox: Any, data: bytes, remote_path: str) -> None: ...

    async def fs_read_bytes(self, sandbox: Any, remote_path: str) -> bytes: ...

    async def snapshot_filesystem(self, sandbox: Any, *, timeout: int) -> str: ...

    async def snapshot_memory(self, sandbox: Any) -> str: ...

    async def sandbox_from_memory_snapshot(self, snapshot_id: str, *, name: str) -> Any: ...

    async def sandbox_terminate(self, sandbox: Any) -> None: ...

    async def app_id(self, app: Any) -> str: ...


class SdkModalPort:
    """The real SDK (async `.aio` interfaces), authenticated with the configured token."""

    def __init__(self, token_id: str, token_secret: str, environment: str | None = None) -> None:
        import modal

        self._modal = modal
        self._client = modal.Client.from_credentials(token_id, token_secret)
        self._environment = environment

    async def app_lookup(self, name: str, *, create_if_missing: bool) -> Any:
        return await self._modal.App.lookup.aio(
            name, client=self._client, create_if_missing=create_if_missing
        )

    def image_from_registry(self, tag: str) -> Any:
        return self._modal.Image.from_registry(tag)

    async def image_from_id(self, image_id: str) -> Any:
        return self._modal.Image.from_id(image_id, client=self._client)

    async def sandbox_create(self, *entrypoint: str, **kwargs: Any) -> Any:
        return await self._modal.Sandbox.create.aio(*entrypoint, client=self._client, **kwargs)

    async def sandbox_from_id(self, sandbox_id: str) -> Any:
        return await self._modal.Sandbox.from_id.aio(sandbox_id, client=self._client)

    async def sandbox_from_name(self, app_name: str, name: str) -> Any:
        return await self._modal.Sandbox.from_name.aio(app_name, name, client=self._client)

    async def sandbox_list(self, *, app_id: str | None, tags: dict[str, str] | None) -> list[Any]:
        return [
            sb async for sb in self._modal.Sandbox.list.aio(app_id=app_id, tags=tags, client=self._client)
        ]

    async def sandbox_poll(self, sandbox: Any) -> int | None:
        result: int | None = await sandbox.poll.aio()
        return result

    async def sandbox_tags(self, sandbox: Any) -> dict[str, str]:
        tags: dict[str, str] = await sandbox.get_tags.aio()
        return tags

    async def sandbox_tunnels(self, sandbox: Any, *, timeout: int) -> dict[int, Any]:
        tunnels: dict[int, Any] = await sandbox.tunnels.aio(timeout=timeout)
        return tunnels

    async def sandbox_exec(
        self,
        sandbox: Any,
        argv: Sequence[str],
        *,
        workdir: str | None,
        env: dict[str, str] | None,
        timeout: int,
    ) -> tuple[int, str, str]:
        process = await sandbox.exec.aio(*argv, workdir=workdir, env=env, timeout=timeout)
        stdout = await process.stdout.read.aio()
        stderr = await process.stderr.read.aio()
        code = await process.wait.aio()
        return int(code), str(stdout), str(stderr)

    async def fs_write_bytes(self, sandbox: Any, data: bytes, remote_path: str) -> None:
        await sandbox.filesystem.write_bytes.aio(data, remote_path)

    async def fs_read_bytes(self, sandbox: Any, remote_path: str) -> bytes:
        data: bytes = await sandbox.filesystem.read_bytes.aio(remote_path)
        return data

    async def snapshot_filesystem(self, sandbox: Any, *, timeout: int) -> str:
        image = await sandbox.snapshot_filesystem.aio(timeout=timeout)
        return str(image.object_id)

    async def snapshot_memory(self, sandbox: Any) -> str:
        snapshot = await sandbox._experimental_snapshot.aio()
        return str(snapshot.object_id)

    async def sandbox_from_memory_snapshot(self, snapshot_id: str, *, name: str) -> Any:
        snapshot = await self._modal.SandboxSnapshot.from_id.aio(snapshot_id, client=self._client)
        return await self._modal.Sandbox._experimental_from_snapshot.aio(
            snapshot, client=self._client, name=name
        )

    async def sandbox_terminate(self, sandbox: Any) -> None:
        await sandbox.terminate.aio()

    async def app_id(self, app: Any) -> str:
        return str(app.app_id)
