"""`E2BPort`: the only place the `e2b` SDK is called (the transport seam).

Each method is one SDK call with the SDK's argument names. `connect` resumes a paused
sandbox as a side effect, so liveness never uses it (`list` only).
"""

from __future__ import annotations

from typing import Any, Protocol


class E2BPort(Protocol):
    async def create(
        self, *, template: str, envs: dict[str, str], metadata: dict[str, str], timeout: int
    ) -> Any: ...

    async def connect(self, sandbox_id: str, *, timeout: int) -> Any: ...

    async def kill(self, sandbox_id: str) -> bool: ...

    async def list(self, *, metadata: dict[str, str], states: list[str]) -> list[Any]: ...

    async def pause(self, sandbox: Any) -> None: ...

    async def create_snapshot(self, sandbox: Any) -> str: ...

    async def delete_snapshot(self, snapshot_id: str) -> bool: ...

    async def run(
        self, sandbox: Any, cmd: str, *, envs: dict[str, str], cwd: str | None, timeout: float
    ) -> tuple[int, str, str]: ...

    async def write(self, sandbox: Any, path: str, data: bytes) -> None: ...

    async def read(self, sandbox: Any, path: str) -> bytes: ...

    def get_host(self, sandbox: Any, port: int) -> str: ...


class SdkE2BPort:
    """The real `e2b.AsyncSandbox`, with the API key and (self-hosted) domain."""

    def __init__(self, api_key: str, domain: str | None = None) -> None:
        from e2b import AsyncSandbox

        self._sandbox = AsyncSandbox
        self._opts: dict[str, Any] = {"api_key": api_key}
        if domain:
            self._opts["domain"] = domain

    async def create(
        self, *, template: str, envs: dict[str, str], metadata: dict[str, str], timeout: int
    ) -> Any:
        return await self._sandbox.create(
            template=template, envs=envs, metadata=metadata, timeout=timeout, **self._opts
        )

    async def connect(self, sandbox_id: str, *, timeout: int) -> Any:
        return await self._sandbox.connect(sandbox_id, timeout=timeout, **self._opts)

    async def kill(self, sandbox_id: str) -> bool:
        return bool(await self._sandbox.kill(sandbox_id, **self._opts))

    async def list(self, *, metadata: dict[str, str], states: list[str]) -> list[Any]:
        from e2b import SandboxQuery, SandboxState

        query = SandboxQuery(metadata=metadata, state=[SandboxState(s) for s in states])
        paginator = self._sandbox.list(query=query, **self._opts)
        items: list[Any] = []
        while paginator.has_next:
            items.extend(await paginator.next_items())
        return items

    async def pause(self, sandbox: Any) -> None:
        await sandbox.pause()

    async def create_snapshot(self, sandbox: Any) -> str:
        info = await sandbox.create_snapshot()
        return str(info.snapshot_id)

    async def delete_snapshot(self, snapshot_id: str) -> bool:
        return bool(await self._sandbox.delete_snapshot(snapshot_id, **self._opts))

    async def run(
        self, sandbox: Any, cmd: str, *, envs: dict[str, str], cwd: str | None, timeout: float
    ) -> tuple[int, str, str]:
        from e2b import CommandExitException

        try:
            result = await sandbox.commands.run(cmd, envs=envs, cwd=cwd, timeout=timeout)
        except CommandExitException as exc:
            return int(exc.exit_code), str(exc.stdout or ""), str(exc.stderr or "")
        return int(result.exit_code), str(result.stdout or ""), str(result.stderr or "")

    async def write(self, sandbox: Any, path: str, data: bytes) -> None:
        await sandbox.files.write(path, data)

    async def read(self, sandbox: Any, path: str) -> bytes:
        return bytes(await sandbox.files.read(path, format="bytes"))

    def get_host(self, sandbox: Any, port: int) -> str:
        return str(sandbox.get_host(port))
