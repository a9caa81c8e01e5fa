"""Faithful fakes of the Modal and E2B SDK ports (the transport seam, sandbox-provider.md §8.3).

They record every call with its arguments, check those arguments against the real SDK
signatures (`inspect.signature(...).bind`), raise the SDKs' own exception types, and emulate
just enough of a sandbox (a file tree in memory, the few commands the service runs) for the
boot pipeline, the scrub and the write-back to be observable.
"""

from __future__ import annotations

import inspect
import json
import shlex
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from proliferate.sandbox.providers.remote_scripts import EXEC_WRAPPER, LIST_TREE, PLACE_FILES


@dataclass
class Call:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class FakeBox:
    """One fake sandbox: its files and state."""

    id: str
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    state: str = "running"  # running | paused | killed
    metadata: dict[str, str] = field(default_factory=dict)
    exec_log: list[list[str]] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        """The commands the service runs, emulated on the file tree; anything else exits 0."""
        if argv[:3] == ["bash", "-c", EXEC_WRAPPER]:
            argv = argv[4:]  # "proliferate-exec" is $0
            if argv[:1] == ["timeout"]:
                argv = argv[4:]  # timeout -k 5 <n>
        self.exec_log.append(argv)
        if argv[:3] == ["python3", "-c", PLACE_FILES]:
            rest = argv[3:]
            for i in range(0, len(rest), 3):
                mode, tmp, final = int(rest[i], 8), rest[i + 1], rest[i + 2]
                data, _ = self.files.pop(tmp)
                self.files[final] = (data, mode)
            return 0, "", ""
        if argv[:3] == ["python3", "-c", LIST_TREE]:
            folder = argv[4].rstrip("/") + "/"
            entries = sorted(
                [p[len(folder) :], len(d)] for p, (d, _) in self.files.items() if p.startswith(folder)
            )
            return 0, json.dumps(entries), ""
        if argv[:3] == ["rm", "-f", "--"]:
            for path in argv[3:]:
                self.files.pop(path, None)
            return 0, "", ""
        if argv[:1] == ["git"] and "rev-parse" in argv:
            return 0, "0123456789abcdef0123456789abcdef01234567\n", ""
        if argv[:2] == ["git", "clone"] and "--branch" in argv:
            branch = argv[argv.index("--branch") + 1]
            if branch.startswith("missing"):
                return 128, "", f"fatal: Remote branch {branch} not found in upstream origin"
        if argv[:2] == ["git", "clone"] and any("fail-clone" in a for a in argv):
            return 128, "", "fatal: repository not found"
        return 0, "", ""


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.failures: dict[str, list[BaseException]] = {}

    def _record(self, call_name: str, /, *args: Any, **kwargs: Any) -> None:
        self.calls.append(Call(call_name, args, kwargs))
        queued = self.failures.get(call_name)
        if queued:
            raise queued.pop(0)

    def fail_next(self, name: str, *errors: BaseException) -> None:
        self.failures.setdefault(name, []).extend(errors)

    def named(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]


def check_signature(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Fail like the SDK would on an unknown or missing argument."""
    inspect.signature(fn).bind(*args, **kwargs)


# --- E2B ---------------------------------------------------------------------------------


@dataclass
class FakeE2BSandbox:
    sandbox_id: str
    box: FakeBox


@dataclass
class FakeE2BInfo:
    sandbox_id: str
    metadata: dict[str, str]
    state: Any
    started_at: datetime


class FakeE2BPort(_Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.boxes: dict[str, FakeBox] = {}
        self.snapshots: dict[str, dict[str, tuple[bytes, int]]] = {}
        self.host_suffix = "e2b.test"

    async def create(
        self, *, template: str, envs: dict[str, str], metadata: dict[str, str], timeout: int
    ) -> Any:
        from e2b import AsyncSandbox

        check_signature(AsyncSandbox.create, template=template, envs=envs, metadata=metadata, timeout=timeout)
        self._record("create", template=template, envs=envs, metadata=metadata, timeout=timeout)
        box = FakeBox(id=f"e2b-{uuid.uuid4().hex[:12]}", metadata=dict(metadata))
        if template in self.snapshots:
            box.files = dict(self.snapshots[template])
        elif template.startswith("snap-"):
            from e2b import NotFoundException

            raise NotFoundException(f"template {template} not found")
        self.boxes[box.id] = box
        return FakeE2BSandbox(box.id, box)

    async def connect(self, sandbox_id: str, *, timeout: int) -> Any:
        self._record("connect", sandbox_id, timeout=timeout)
        box = self.boxes.get(sandbox_id)
        if box is None or box.state == "killed":
            from e2b import NotFoundException

            raise NotFoundException(f"sandbox {sandbox_id} not found")
        box.state = "running"  # connect resumes a paused sandbox
        return FakeE2BSandbox(box.id, box)

    async def kill(self, sandbox_id: str) -> bool:
        from e2b import AsyncSandbox

        check_signature(AsyncSandbox.kill, sandbox_id)
        self._record("kill", sandbox_id)
        box = self.boxes.get(sandbox_id)
        if box is None or box.state == "killed":
            return False
        box.state = "killed"
        return True

    async def list(self, *, metadata: dict[str, str], states: list[str]) -> list[Any]:
        from e2b import SandboxQuery, SandboxState

        SandboxQuery(metadata=metadata, state=[SandboxState(s) for s in states])  # the real query type
        self._record("list", metadata=metadata, states=states)
        return [
            FakeE2BInfo(b.id, b.metadata, SandboxState(b.state), b.started_at)
            for b in self.boxes.values()
            if b.state in states and all(b.metadata.get(k) == v for k, v in metadata.items())
        ]

    async def pause(self, sandbox: Any) -> None:
        self._record("pause", sandbox.sandbox_id)
        sandbox.box.state = "paused"

    async def create_snapshot(self, sandbox: Any) -> str:
        self._record("create_snapshot", sandbox.sandbox_id)
        ref = f"snap-{uuid.uuid4().hex[:10]}"
        self.snapshots[ref] = dict(sandbox.box.files)
        return ref

    async def delete_snapshot(self, snapshot_id: str) -> bool:
        self._record("delete_snapshot", snapshot_id)
        return self.snapshots.pop(snapshot_id, None) is not None

    async def run(
        self, sandbox: Any, cmd: str, *, envs: dict[str, str], cwd: str | None, timeout: float
    ) -> tuple[int, str, str]:
        from e2b.sandbox_async.commands.command import Commands

        check_signature(Commands.run, None, cmd, envs=envs, cwd=cwd, timeout=timeout)
        self._record("run", sandbox.sandbox_id, cmd, envs=envs, cwd=cwd, timeout=timeout)
        self._alive(sandbox)
        return sandbox.box.run(shlex.split(cmd))

    async def write(self, sandbox: Any, path: str, data: bytes) -> None:
        self._record("write", sandbox.sandbox_id, path, data)
        self._alive(sandbox)
        sandbox.box.files[path] = (data, 0o644)

    async def read(self, sandbox: Any, path: str) -> bytes:
        self._record("read", sandbox.sandbox_id, path)
        self._alive(sandbox)
        if path not in sandbox.box.files:
            from e2b import FileNotFoundException

            raise FileNotFoundException(f"{path} not found")
        return sandbox.box.files[path][0]

    def get_host(self, sandbox: Any, port: int) -> str:
        self._record("get_host", sandbox.sandbox_id, port)
        return f"{port}-{sandbox.sandbox_id}.{self.host_suffix}"

    def _alive(self, sandbox: Any) -> None:
        if sandbox.box.state != "running":
            from e2b import SandboxNotFoundException

            raise SandboxNotFoundException(f"sandbox {sandbox.sandbox_id} is {sandbox.box.state}")


# --- Modal -------------------------------------------------------------------------------


@dataclass
class FakeModalSandbox:
    object_id: str
    name: str
    box: FakeBox
    tags: dict[str, str]
    returncode: int | None = None


@dataclass
class FakeTunnel:
    url: str


@dataclass
class FakeApp:
    app_id: str
    name: str


class FakeModalPort(_Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.sandboxes: dict[str, FakeModalSandbox] = {}
        self.images: dict[str, dict[str, tuple[bytes, int]]] = {}
        self.memory: dict[str, FakeModalSandbox] = {}

    async def app_lookup(self, name: str, *, create_if_missing: bool) -> Any:
        import modal

        check_signature(modal.App.lookup, name, create_if_missing=create_if_missing)
        self._record("app_lookup", name, create_if_missing=create_if_missing)
        return FakeApp(f"ap-{name}", name)

    def image_from_registry(self, tag: str) -> Any:
        import modal

        check_signature(modal.Image.from_registry, tag)
        self._record("image_from_registry", tag)
        return ("registry", tag)

    async def image_from_id(self, image_id: str) -> Any:
        self._record("image_from_id", image_id)
        if image_id not in self.images:
            from modal.exception import NotFoundError

            raise NotFoundError(f"image {image_id} not found")
        return ("image", image_id)

    async def sandbox_create(self, *entrypoint: str, **kwargs: Any) -> Any:
        import modal
        from modal.exception import AlreadyExistsError

        check_signature(modal.Sandbox.create, *entrypoint, **kwargs)
        self._record("sandbox_create", *entrypoint, **kwargs)
        name = kwargs["name"]
        if any(s.name == name and s.returncode is None for s in self.sandboxes.values()):
            raise AlreadyExistsError(f"sandbox {name} exists")
        box = FakeBox(id=f"sb-{uuid.uuid4().hex[:12]}")
        image = kwargs.get("image")
        if isinstance(image, tuple) and image[0] == "image":
            box.files = dict(self.images[image[1]])
        sandbox = FakeModalSandbox(box.id, name, box, dict(kwargs.get("tags") or {}))
        self.sandboxes[box.id] = sandbox
        return sandbox

    async def sandbox_from_id(self, sandbox_id: str) -> Any:
        self._record("sandbox_from_id", sandbox_id)
        found = self.sandboxes.get(sandbox_id)
        if found is None:
            from modal.exception import NotFoundError

            raise NotFoundError(f"sandbox {sandbox_id} not found")
        return found

    async def sandbox_from_name(self, app_name: str, name: str) -> Any:
        self._record("sandbox_from_name", app_name, name)
        return next(s for s in self.sandboxes.values() if s.name == name and s.returncode is None)

    async def sandbox_list(self, *, app_id: str | None, tags: dict[str, str] | None) -> list[Any]:
        import modal

        check_signature(modal.Sandbox.list, app_id=app_id, tags=tags)
        self._record("sandbox_list", app_id=app_id, tags=tags)
        return [s for s in self.sandboxes.values() if s.returncode is None]

    async def sandbox_poll(self, sandbox: Any) -> int | None:
        self._record("sandbox_poll", sandbox.object_id)
        return sandbox.returncode  # type: ignore[no-any-return]

    async def sandbox_tags(self, sandbox: Any) -> dict[str, str]:
        self._record("sandbox_tags", sandbox.object_id)
        return dict(sandbox.tags)

    async def sandbox_tunnels(self, sandbox: Any, *, timeout: int) -> dict[int, Any]:
        self._record("sandbox_tunnels", sandbox.object_id, timeout=timeout)
        return {20000: FakeTunnel(f"https://{sandbox.object_id}.modal.test")}

    async def sandbox_exec(
        self,
        sandbox: Any,
        argv: Sequence[str],
        *,
        workdir: str | None,
        env: dict[str, str] | None,
        timeout: int,
    ) -> tuple[int, str, str]:
        import modal

        check_signature(modal.Sandbox.exec, None, *argv, workdir=workdir, env=env, timeout=timeout)
        self._record("sandbox_exec", sandbox.object_id, list(argv), workdir=workdir, env=env, timeout=timeout)
        self._alive(sandbox)
        return sandbox.box.run(list(argv))  # type: ignore[no-any-return]

    async def fs_write_bytes(self, sandbox: Any, data: bytes, remote_path: str) -> None:
        from modal.sandbox._filesystem import _SandboxFilesystem

        check_signature(_SandboxFilesystem.write_bytes, None, data, remote_path)
        self._record("fs_write_bytes", sandbox.object_id, data, remote_path)
        self._alive(sandbox)
        sandbox.box.files[remote_path] = (data, 0o644)

    async def fs_read_bytes(self, sandbox: Any, remote_path: str) -> bytes:
        self._record("fs_read_bytes", sandbox.object_id, remote_path)
        self._alive(sandbox)
        if remote_path not in sandbox.box.files:
            from modal.exception import SandboxFilesystemNotFoundError

            raise SandboxFilesystemNotFoundError(f"{remote_path} not found")
        return sandbox.box.files[remote_path][0]  # type: ignore[no-any-return]

    async def snapshot_filesystem(self, sandbox: Any, *, timeout: int) -> str:
        import modal

        check_signature(modal.Sandbox.snapshot_filesystem, None, timeout=timeout)
        self._record("snapshot_filesystem", sandbox.object_id, timeout=timeout)
        ref = f"im-{uuid.uuid4().hex[:12]}"
        self.images[ref] = dict(sandbox.box.files)
        return ref

    async def snapshot_memory(self, sandbox: Any) -> str:
        self._record("snapshot_memory", sandbox.object_id)
        ref = f"sn-{uuid.uuid4().hex[:12]}"
        self.memory[ref] = sandbox
        return ref

    async def sandbox_from_memory_snapshot(self, snapshot_id: str, *, name: str) -> Any:
        self._record("sandbox_from_memory_snapshot", snapshot_id, name=name)
        source = self.memory.get(snapshot_id)
        if source is None:
            from modal.exception import NotFoundError

            raise NotFoundError(f"snapshot {snapshot_id} not found")
        box = FakeBox(id=f"sb-{uuid.uuid4().hex[:12]}", files=dict(source.box.files))
        sandbox = FakeModalSandbox(box.id, name, box, dict(source.tags))
        self.sandboxes[box.id] = sandbox
        return sandbox

    async def sandbox_terminate(self, sandbox: Any) -> None:
        self._record("sandbox_terminate", sandbox.object_id)
        sandbox.returncode = 0

    async def app_id(self, app: Any) -> str:
        return str(app.app_id)

    def _alive(self, sandbox: Any) -> None:
        if sandbox.returncode is not None:
            from modal.exception import SandboxTerminatedError

            raise SandboxTerminatedError("sandbox terminated")
