"""What Modal and E2B share: exec with the session env and an in-sandbox timeout, atomic
file writes with modes, bounded tree reads — all built on three raw SDK primitives."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence

from proliferate.sandbox.providers.base import (
    DEFAULT_HOME,
    ExecResult,
    FileChunk,
    FileWrite,
    ProviderError,
    ProviderSandbox,
    ReadLimits,
    cap_output,
)
from proliferate.sandbox.providers.remote_scripts import EXEC_WRAPPER, LIST_TREE, PLACE_FILES

SESSION_ENV = "/tmp/proliferate/session.env"  # noqa: S108 - inside the sandbox
PYTHON = "python3"
KILL_AFTER_S = 5
CHUNK = 1024 * 1024


class RemoteProvider:
    """Subclasses implement `_exec_raw`, `_write_raw`, `_read_raw` (None when missing)."""

    kind_name = "remote"

    async def _exec_raw(
        self,
        ps: ProviderSandbox,
        argv: Sequence[str],
        *,
        cwd: str | None,
        env: Mapping[str, str],
        timeout_s: int,
    ) -> tuple[int, str, str]:
        raise NotImplementedError

    async def _write_raw(self, ps: ProviderSandbox, path: str, data: bytes) -> None:
        raise NotImplementedError

    async def over_limits(self, refs: Sequence[ProviderSandbox]) -> dict[str, str]:
        return {}  # Modal and E2B enforce their own disk quotas

    async def _read_raw(self, ps: ProviderSandbox, path: str) -> bytes | None:
        raise NotImplementedError

    async def exec(
        self,
        ps: ProviderSandbox,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: int = 30,
    ) -> ExecResult:
        """argv runs under `timeout` inside the sandbox (exit 124), with the session env; the
        wrapper passes argv as positional parameters, so nothing is shell-interpreted."""
        wrapped = [
            "bash",
            "-c",
            EXEC_WRAPPER,
            "proliferate-exec",
            "timeout",
            "-k",
            str(KILL_AFTER_S),
            str(timeout_s),
            *argv,
        ]
        run_env = {**dict(env or {}), "PROLIFERATE_SESSION_ENV": SESSION_ENV}
        code, stdout, stderr = await self._exec_raw(
            ps, wrapped, cwd=cwd or DEFAULT_HOME, env=run_env, timeout_s=timeout_s + KILL_AFTER_S + 10
        )
        out, out_cut = cap_output(stdout)
        err, err_cut = cap_output(stderr)
        return ExecResult(code, out, err, out_cut, err_cut)

    async def _checked(
        self, ps: ProviderSandbox, operation: str, argv: Sequence[str], timeout_s: int = 60
    ) -> str:
        code, stdout, stderr = await self._exec_raw(ps, argv, cwd=DEFAULT_HOME, env={}, timeout_s=timeout_s)
        if code != 0:
            raise ProviderError(self.kind_name, operation, f"exit {code}: {stderr[-300:]}", retryable=False)
        return stdout

    async def write_files(self, ps: ProviderSandbox, files: Sequence[FileWrite]) -> None:
        if not files:
            return
        parents = sorted({f.path.rsplit("/", 1)[0] for f in files if "/" in f.path.strip("/")})
        await self._checked(ps, "write_files", ["mkdir", "-p", "--", *parents])
        place: list[str] = []
        for f in files:
            directory, name = f.path.rsplit("/", 1)
            tmp = f"{directory}/.{name}.{secrets.token_hex(4)}.tmp"
            await self._write_raw(ps, tmp, f.content)
            place += [format(f.mode, "o"), tmp, f.path]
        await self._checked(ps, "write_files", [PYTHON, "-c", PLACE_FILES, *place])

    async def read_file(self, ps: ProviderSandbox, path: str, max_bytes: int) -> bytes | None:
        data = await self._read_raw(ps, path)
        return data[:max_bytes] if data is not None else None

    async def remove_files(self, ps: ProviderSandbox, paths: Sequence[str]) -> None:
        if paths:
            await self._checked(ps, "remove_files", ["rm", "-f", "--", *paths])

    async def read_files(
        self, ps: ProviderSandbox, folder: str, limits: ReadLimits
    ) -> AsyncIterator[FileChunk]:
        code, stdout, stderr = await self._exec_raw(
            ps, [PYTHON, "-c", LIST_TREE, ps.home_dir, folder], cwd=DEFAULT_HOME, env={}, timeout_s=60
        )
        if code == 3:
            raise ProviderError(self.kind_name, "read_files", "path leaves the sandbox", retryable=False)
        if code != 0:
            raise ProviderError(
                self.kind_name, "read_files", f"listing failed: {stderr[-300:]}", retryable=False
            )
        entries: list[list[object]] = json.loads(stdout or "[]")
        count = total = 0
        base = folder.rstrip("/")
        for rel_obj, size_obj in entries:
            rel, size = str(rel_obj), int(str(size_obj))
            skip = limits.skip_reason(count, total, size)
            if skip is not None:
                yield FileChunk(rel, size=size, skipped=True, skip_reason=skip)
                continue
            data = await self._read_raw(ps, f"{base}/{rel}") or b""
            count += 1
            total += len(data)
            if not data:
                yield FileChunk(rel, b"", 0, True, 0)
            for offset in range(0, len(data), CHUNK):
                piece = data[offset : offset + CHUNK]
                yield FileChunk(rel, piece, offset, offset + len(piece) >= len(data), len(data))
