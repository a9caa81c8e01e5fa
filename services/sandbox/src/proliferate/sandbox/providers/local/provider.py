"""The local provider (sandbox-provider.md §5.9): a sandbox is a directory tree plus a process
tree on this host, inside bubblewrap when it works.

    SANDBOX_LOCAL_ROOT/
      sandboxes/<id>/{home,tmp,run,lock}   one sandbox (run/: supervisor.pid, mcp.sock, created_at)
      snapshots/<artifact>.tar.zst         filesystem snapshots
      toolcache/<base-layer digest>/       the base layer copied into every fresh home

The root process is `python -m proliferate.sandbox_mcp supervise` (CONTRACT.md); it outlives
service restarts. Exec goes through its unix socket; file I/O is host-side.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from proliferate.agent_contract import ManifestInput, base_layer_digest, base_layer_files, build_manifest
from proliferate.kit.ids import uuid7
from proliferate.kit.logs import get_logger
from proliferate.sandbox.providers.base import (
    ArtifactKind,
    ArtifactRef,
    ArtifactUnusable,
    Capabilities,
    CapabilityUnsupported,
    CreateRequest,
    Endpoints,
    ExecResult,
    FileChunk,
    FileWrite,
    Health,
    Placement,
    Ports,
    ProviderArtifact,
    ProviderError,
    ProviderKind,
    ProviderSandbox,
    ReadLimits,
    SandboxGone,
    SandboxRef,
)
from proliferate.sandbox.providers.local import archive, files, processes
from proliferate.sandbox.providers.local.runtime import SandboxRuntime, prepare
from proliferate.sandbox.providers.local.users import as_user

log = get_logger("proliferate.sandbox.local")

BLOCK = 8
BWRAP_HOME = "/home/user"
BWRAP_RUN = "/run/proliferate"
BWRAP_BIN = "/opt/proliferate/bin"
SOCKET_WAIT_S = 20.0
MODULES = ".config/opencode/node_modules"
NPROC = 4096
NOFILE = 65536
ETC_FILES = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/gitconfig",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/mime.types",
    "/etc/gai.conf",
)


@dataclass(frozen=True)
class LocalConfig:
    root: Path
    isolation: str  # bwrap | process
    uid: int | None  # None: the service's own user
    host_id: str
    port_low: int
    port_high: int
    max_sandboxes: int
    max_disk_mb: int
    python: str
    opencode_bin: Path | None
    plugin_dir: Path | None  # holds node_modules/@opencode-ai/plugin


class LocalProvider:
    kind = ProviderKind.LOCAL
    supports_base_snapshots = False

    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self.namespace = config.host_id
        self.isolation: str | None = config.isolation
        self.capabilities = Capabilities(pause=True, vscode=shutil.which("openvscode-server") is not None)
        self.placement: Placement | None = Placement(
            config.host_id, config.port_low, config.port_high, BLOCK, config.max_sandboxes
        )
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self.toolcache: Path | None = None
        self.runtime: SandboxRuntime | None = None
        # Set when SANDBOX_LOCAL_AGENT_COMMAND replaces OpenCode (tests: the fake agent).
        self.agent_command = False

    # --- layout -------------------------------------------------------------------------

    def _dir(self, sandbox_id: str) -> Path:
        return self.config.root / "sandboxes" / sandbox_id

    def _snapshot_path(self, ref: str) -> Path:
        name = Path(ref).name
        if not name.endswith(".tar.zst") or name != ref.split("/")[-1] or "/" in ref:
            raise ArtifactUnusable(self.kind.value, "not_found", "malformed local archive key")
        return self.config.root / "snapshots" / name

    def _views(self, sandbox_id: str) -> tuple[str, str]:
        if self.config.isolation == "bwrap":
            return BWRAP_HOME, "/tmp"  # noqa: S108 - the sandbox's own /tmp
        base = self._dir(sandbox_id)
        return str(base / "home"), str(base / "tmp")

    def handle(self, ref: SandboxRef) -> ProviderSandbox:
        home_view, tmp_view = self._views(ref.sandbox_id)
        base = ref.port_base or 0
        return ProviderSandbox(
            sandbox_id=ref.sandbox_id,
            provider_sandbox_id=ref.provider_sandbox_id or ref.sandbox_id,
            home_dir=home_view,
            tmp_dir=tmp_view,
            ports=Ports(router=base, agent=base + 1, api=base + 2, vscode=base + 3),
            isolation=ref.isolation or self.config.isolation,
            host_id=self.config.host_id,
            port_base=ref.port_base,
        )

    def _mapping(self, ps: ProviderSandbox) -> files.Mapping:
        base = self._dir(ps.sandbox_id)
        return files.Mapping(ps.home_dir, ps.tmp_dir, base / "home", base / "tmp", self._uid())

    def _uid(self) -> int | None:
        return self.config.uid if os.geteuid() == 0 else None

    # --- startup ------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the root and fill the tool cache once (the base layer + pinned plugin)."""
        for sub in ("sandboxes", "snapshots", "toolcache"):
            (self.config.root / sub).mkdir(parents=True, exist_ok=True)
        for path in (self.config.root, self.config.root / "sandboxes"):
            path.chmod(0o711)  # the sandbox user traverses to its own home only
        manifest = build_manifest(
            ManifestInput(
                mode="coding",
                home_dir="/home/user",
                repo_dir="/home/user/workspace",
                prompt="",
                llm_base_url="http://x/v1",
            )
        )
        digest = base_layer_digest(manifest)
        cache = self.config.root / "toolcache" / digest
        if not (cache / ".complete").exists():
            staging = cache.with_name(f"{digest}.{os.getpid()}.tmp")
            shutil.rmtree(staging, ignore_errors=True)
            for f in base_layer_files():
                target = staging / f.path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(f.content)
                target.chmod(f.mode_bits)
            plugin = self.config.plugin_dir
            if plugin is not None and (plugin / "node_modules").is_dir():
                shutil.copytree(
                    plugin / "node_modules",
                    staging / ".config/opencode/node_modules",
                    symlinks=True,
                    copy_function=_link_or_copy,
                )
            (staging / ".complete").write_text(digest)
            if not (cache / ".complete").exists():
                shutil.rmtree(cache, ignore_errors=True)  # a half-written one
            try:
                os.replace(staging, cache)
            except OSError:
                if not (cache / ".complete").exists():
                    raise
            shutil.rmtree(staging, ignore_errors=True)  # another replica filled it first
        self.toolcache = cache
        self.runtime = prepare(self.config.root, self.config.python, self._uid())

    # --- create -------------------------------------------------------------------------

    async def create(self, req: CreateRequest) -> ProviderSandbox:
        if req.port_base is None:
            raise ProviderError(self.kind.value, "create", "no port block allocated", retryable=False)
        base = self._dir(req.sandbox_id)
        if base.exists():
            raise ProviderError(
                self.kind.value, "create", "sandbox directory already exists", retryable=False
            )
        try:
            await asyncio.to_thread(self._make_tree, req)
        except (archive.UnsafeArchive, archive.ArchiveCorrupt) as exc:
            shutil.rmtree(base, ignore_errors=True)
            raise ArtifactUnusable(self.kind.value, "corrupt", f"archive rejected: {exc}") from None
        except FileNotFoundError:
            shutil.rmtree(base, ignore_errors=True)
            raise ArtifactUnusable(self.kind.value, "not_found", "the archive file is missing") from None
        except OSError as exc:
            shutil.rmtree(base, ignore_errors=True)
            raise ProviderError(
                self.kind.value, "create", f"cannot prepare the sandbox: {exc}", retryable=False
            ) from None
        ps = self.handle(
            SandboxRef(
                req.sandbox_id, req.sandbox_id, self.config.isolation, self.config.host_id, req.port_base
            )
        )
        try:
            await self._launch(ps, req.env)
            await self._wait_socket(ps)
        except ProviderError:
            await self.terminate(ps)
            raise
        return ps

    def _make_tree(self, req: CreateRequest) -> None:
        base = self._dir(req.sandbox_id)
        home, tmp, run = base / "home", base / "tmp", base / "run"
        base.mkdir(mode=0o711)
        for path in (tmp, run):
            path.mkdir(mode=0o700)
        assert self.toolcache is not None, "prepare() runs at startup"
        if req.source is not None and req.source.kind in (ArtifactKind.FILESYSTEM, ArtifactKind.BASE):
            archive.extract(self._snapshot_path(req.source.provider_ref), home, req.source.sha256)
        else:
            shutil.copytree(
                self.toolcache,
                home,
                symlinks=True,
                ignore=shutil.ignore_patterns(".complete", "node_modules"),
            )
        home.chmod(0o700)
        (home / "workspace").mkdir(exist_ok=True)
        (run / "created_at").write_text(datetime.now(UTC).isoformat())
        (run / "port_base").write_text(str(req.port_base))
        (base / "lock").touch()
        uid = self._uid()
        if uid is not None:
            for path in (home, tmp, run):
                _chown_tree(path, uid)
        self._link_base_modules(home, uid)

    def _link_base_modules(self, home: Path, uid: int | None) -> None:
        """The pinned plugin's node_modules (base layer, 60+ MB): hard links to the tool cache
        when the sandbox user cannot write the cache's files (they stay the service's), a copy
        otherwise. Archives leave it out; every create puts it back from the cache."""
        assert self.toolcache is not None
        source = self.toolcache / MODULES
        if not source.is_dir():
            return
        target = home / MODULES
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shared = uid is not None and uid != os.geteuid()
        shutil.copytree(
            source, target, symlinks=True, copy_function=_link_or_copy if shared else shutil.copy2
        )
        if uid is not None and not shared:
            _chown_tree(target, uid)

    def _env(self, ps: ProviderSandbox, extra: Mapping[str, str]) -> dict[str, str]:
        assert self.runtime is not None, "prepare() runs at startup"
        path_dirs = [BWRAP_BIN if self.config.isolation == "bwrap" else str(self.runtime.bin_dir)]
        if self.config.opencode_bin is not None:
            path_dirs.append(str(self.config.opencode_bin.parent))
        path_dirs += ["/usr/local/bin", "/usr/bin", "/bin"]
        env = {
            "HOME": ps.home_dir,
            "PATH": ":".join(dict.fromkeys(path_dirs)),
            "TMPDIR": ps.tmp_dir,
            "LANG": "C.UTF-8",
            "PROLIFERATE_SANDBOX_ID": ps.sandbox_id,
            "PROLIFERATE_HOME": ps.home_dir,
            "PROLIFERATE_TMP": ps.tmp_dir,
            **self.runtime.env(),
        }
        env.update({k: v for k, v in extra.items() if k == "PROLIFERATE_SANDBOX_ID"})
        return env

    def _argv(self, ps: ProviderSandbox) -> list[str]:
        run = BWRAP_RUN if self.config.isolation == "bwrap" else str(self._dir(ps.sandbox_id) / "run")
        assert self.runtime is not None
        inner = [
            self.runtime.python,
            "-m",
            "proliferate.sandbox_mcp",
            "supervise",
            "--home",
            ps.home_dir,
            "--tmp",
            ps.tmp_dir,
            "--socket",
            f"{run}/mcp.sock",
        ]
        if self.config.isolation != "bwrap":
            return inner
        base = self._dir(ps.sandbox_id)
        argv = [
            "bwrap",
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--hostname",
            "sandbox",
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/bin",
            "/bin",
            "--symlink",
            "usr/sbin",
            "/sbin",
            "--symlink",
            "usr/lib",
            "/lib",
        ]
        if Path("/lib64").exists():
            argv += ["--symlink", "usr/lib64", "/lib64"]
        for etc in ETC_FILES:
            if Path(etc).exists():
                argv += ["--ro-bind", etc, etc]
        argv += self._passwd_binds(base)
        argv += [
            "--bind", str(base / "home"), BWRAP_HOME,
            "--bind", str(base / "tmp"), "/tmp",  # noqa: S108 - the sandbox's own /tmp
            "--bind", str(base / "run"), BWRAP_RUN,
            "--proc", "/proc",
            "--dev", "/dev",
            "--chdir", BWRAP_HOME,
        ]  # fmt: skip
        assert self.runtime is not None
        argv += ["--ro-bind", str(self.runtime.bin_dir), BWRAP_BIN]
        for path in self._toolchain_paths():  # after /tmp, so a root under /tmp stays visible
            argv += ["--ro-bind", path, path]
        uid = self._uid()
        if uid is not None:
            argv += ["--uid", str(uid), "--gid", str(uid)]
        return [*argv, "--", *inner]

    def _passwd_binds(self, base: Path) -> list[str]:
        """A minimal /etc/passwd and /etc/group naming the sandbox user `user`."""
        uid = self._uid() if self._uid() is not None else os.geteuid()
        run = base / "run"
        (run / "passwd").write_text(
            f"root:x:0:0:root:/root:/bin/sh\nuser:x:{uid}:{uid}:user:{BWRAP_HOME}:/bin/bash\n"
        )
        (run / "group").write_text(f"root:x:0:\nuser:x:{uid}:\n")
        return [
            "--ro-bind",
            str(run / "passwd"),
            "/etc/passwd",
            "--ro-bind",
            str(run / "group"),
            "/etc/group",
        ]

    def _toolchain_paths(self) -> list[str]:
        """Read-only: the runtime's interpreter, packages and wrappers, and OpenCode."""
        assert self.runtime is not None
        paths = set(self.runtime.mounts())
        if self.config.opencode_bin is not None:
            paths.add(str(self.config.opencode_bin.parent.parent))  # node_modules (.bin links into it)
        return sorted(
            p for p in paths if Path(p).exists() and not p.startswith(("/usr/", "/etc/", "/proc", "/dev"))
        )

    async def _launch(self, ps: ProviderSandbox, extra_env: Mapping[str, str]) -> None:
        await asyncio.to_thread(self._spawn, ps, extra_env)

    def _spawn(self, ps: ProviderSandbox, extra_env: Mapping[str, str]) -> None:
        run = self._dir(ps.sandbox_id) / "run"
        # Never root inside: bwrap itself runs unprivileged as the sandbox user.
        argv, kwargs = as_user(self._argv(ps), self._uid())
        argv = _limited(argv)  # set while still privileged, inherited through setpriv and exec
        with open(run / "supervisor.log", "ab") as log_file:
            try:
                child = subprocess.Popen(
                    argv,
                    cwd=self._dir(ps.sandbox_id) / "home",
                    env=self._env(ps, extra_env),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    **kwargs,
                )
            except OSError as exc:
                raise ProviderError(
                    self.kind.value, "create", f"cannot start the supervisor: {exc}", retryable=False
                ) from None
        self._reap_children()
        self._children[ps.sandbox_id] = child
        processes.write_pidfile(run / "supervisor.pid", child.pid)

    def _reap_children(self) -> None:
        for sid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[sid]

    async def _wait_socket(self, ps: ProviderSandbox) -> None:
        deadline = time.monotonic() + SOCKET_WAIT_S
        sock = self._dir(ps.sandbox_id) / "run" / "mcp.sock"
        pidfile = self._dir(ps.sandbox_id) / "run" / "supervisor.pid"
        while time.monotonic() < deadline:
            if processes.root_alive(pidfile) is None:
                child = self._children.get(ps.sandbox_id)
                code = child.poll() if child is not None else None
                raise ProviderError(
                    self.kind.value,
                    "create",
                    f"the supervisor exited ({code}): {self._log_tail(ps)}",
                    retryable=False,
                )
            if sock.exists():
                with contextlib.suppress(httpx.HTTPError):
                    async with self._client(ps, 5.0) as client:
                        if (await client.get("http://sandbox/health")).status_code == 200:
                            return
            await asyncio.sleep(0.05)
        raise ProviderError(
            self.kind.value, "create", "the supervisor did not open its exec socket", retryable=True
        )

    def _log_tail(self, ps: ProviderSandbox) -> str:
        path = self._dir(ps.sandbox_id) / "run" / "supervisor.log"
        try:
            return path.read_text(errors="replace")[-600:]
        except OSError:
            return ""

    def _client(self, ps: ProviderSandbox, timeout: float) -> httpx.AsyncClient:
        sock = self._dir(ps.sandbox_id) / "run" / "mcp.sock"
        return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(sock)), timeout=timeout)

    # --- lookups ------------------------------------------------------------------------

    def _root(self, sandbox_id: str) -> int | None:
        return processes.root_alive(self._dir(sandbox_id) / "run" / "supervisor.pid")

    async def find(self, sandbox_id: str, provider_sandbox_id: str | None) -> ProviderSandbox | None:
        root = self._root(sandbox_id)
        if root is None:
            return None
        port_base = self._port_base(sandbox_id)
        ps = self.handle(
            SandboxRef(
                sandbox_id,
                provider_sandbox_id or sandbox_id,
                self.config.isolation,
                self.config.host_id,
                port_base,
            )
        )
        paused = processes.state(root) == "T"
        return ProviderSandbox(**{**ps.__dict__, "paused": paused})

    def _port_base(self, sandbox_id: str) -> int | None:
        try:
            return int((self._dir(sandbox_id) / "run" / "port_base").read_text())
        except (OSError, ValueError):
            return None

    async def endpoints(self, ps: ProviderSandbox) -> Endpoints:
        if ps.port_base is None:
            raise ProviderError(
                self.kind.value, "endpoints", "the sandbox has no port block", retryable=False
            )
        return Endpoints(preview_url=f"http://127.0.0.1:{ps.ports.router}")

    async def list_alive(self, refs: Sequence[ProviderSandbox]) -> set[str]:
        return {ps.sandbox_id for ps in refs if self._root(ps.sandbox_id) is not None}

    async def list_owned(self) -> list[ProviderSandbox]:
        owned = []
        root = self.config.root / "sandboxes"
        if not root.is_dir():
            return []
        for entry in sorted(root.iterdir()):
            if not entry.is_dir():
                continue
            created = _created_at(entry)
            owned.append(
                ProviderSandbox(
                    sandbox_id=entry.name,
                    provider_sandbox_id=entry.name,
                    home_dir=self._views(entry.name)[0],
                    tmp_dir=self._views(entry.name)[1],
                    isolation=self.config.isolation,
                    host_id=self.config.host_id,
                    created_at=created,
                )
            )
        return owned

    # --- exec and files -------------------------------------------------------------

    async def exec(
        self,
        ps: ProviderSandbox,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: int = 30,
    ) -> ExecResult:
        if self._root(ps.sandbox_id) is None:
            raise SandboxGone(self.kind.value, "exec")
        body = {"argv": list(argv), "cwd": cwd, "env": dict(env or {}), "timeout_s": float(timeout_s)}
        try:
            async with self._client(ps, timeout_s + 20.0) as client:
                response = await client.post("http://sandbox/exec", json=body)
        except httpx.HTTPError as exc:
            raise ProviderError(
                self.kind.value, "exec", f"exec socket: {type(exc).__name__}", retryable=True
            ) from None
        if response.status_code != 200:
            raise ProviderError(
                self.kind.value,
                "exec",
                f"exec refused ({response.status_code}): {response.text[:300]}",
                retryable=False,
            )
        doc = response.json()
        return ExecResult(
            exit_code=int(doc["exit_code"]),
            stdout=str(doc["stdout"]),
            stderr=str(doc["stderr"]),
            stdout_truncated=bool(doc.get("stdout_truncated")),
            stderr_truncated=bool(doc.get("stderr_truncated")),
        )

    async def write_files(self, ps: ProviderSandbox, writes: Sequence[FileWrite]) -> None:
        mapping = self._files_mapping(ps, "write_files")
        with self._file_errors("write_files"):
            for w in writes:
                await asyncio.to_thread(files.write_file, mapping, w.path, w.content, w.mode)

    async def read_file(self, ps: ProviderSandbox, path: str, max_bytes: int) -> bytes | None:
        mapping = self._files_mapping(ps, "read_file")
        with self._file_errors("read_file"):
            return await asyncio.to_thread(files.read_file, mapping, path, max_bytes)

    async def remove_files(self, ps: ProviderSandbox, paths: Sequence[str]) -> None:
        mapping = self._files_mapping(ps, "remove_files")
        with self._file_errors("remove_files"):
            for path in paths:
                await asyncio.to_thread(files.remove_file, mapping, path)

    def _files_mapping(self, ps: ProviderSandbox, operation: str) -> files.Mapping:
        if not self._dir(ps.sandbox_id).is_dir():
            raise SandboxGone(self.kind.value, operation)
        return self._mapping(ps)

    @contextlib.contextmanager
    def _file_errors(self, operation: str) -> Iterator[None]:
        try:
            yield
        except files.PathOutside as exc:
            raise ProviderError(
                self.kind.value, operation, f"path leaves the sandbox: {exc}", retryable=False
            ) from None
        except OSError as exc:
            raise ProviderError(
                self.kind.value, operation, f"{type(exc).__name__}: {exc.strerror}", retryable=False
            ) from None

    async def read_files(
        self, ps: ProviderSandbox, folder: str, limits: ReadLimits
    ) -> AsyncIterator[FileChunk]:
        mapping = self._mapping(ps)
        try:
            chunks = await asyncio.to_thread(lambda: list(files.read_tree(mapping, folder, limits)))
        except files.PathOutside as exc:
            raise ProviderError(
                self.kind.value, "read_files", f"path leaves the sandbox: {exc}", retryable=False
            ) from None
        for chunk in chunks:
            yield chunk

    # --- snapshots, pause, terminate --------------------------------------------------

    @contextlib.asynccontextmanager
    async def _locked(self, sandbox_id: str) -> AsyncIterator[None]:
        """`flock` on sandboxes/<id>/lock: serializes mutations across replicas of one host."""
        path = self._dir(sandbox_id) / "lock"
        if not path.exists():
            yield
            return
        fd = os.open(path, os.O_RDWR)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    async def snapshot(self, ps: ProviderSandbox, kind: ArtifactKind) -> ProviderArtifact:
        if kind is ArtifactKind.MEMORY:
            raise CapabilityUnsupported(self.kind.value, "memory snapshot")
        root = self._root(ps.sandbox_id)
        if root is None:
            raise SandboxGone(self.kind.value, "snapshot")
        if kind is ArtifactKind.PAUSE:
            async with self._locked(ps.sandbox_id):
                await asyncio.to_thread(processes.freeze, ps.sandbox_id, root)
            return ProviderArtifact(ArtifactKind.PAUSE, f"pause:{ps.sandbox_id}:{uuid7()}")
        home = self._dir(ps.sandbox_id) / "home"
        over = await self._over_disk_limit(ps.sandbox_id)
        if over is not None:
            raise ProviderError(self.kind.value, "snapshot", f"{over} (limits_exceeded)", retryable=False)
        name = f"{uuid7()}.tar.zst"
        async with self._locked(ps.sandbox_id):
            frozen = await asyncio.to_thread(processes.freeze, ps.sandbox_id, root)
            try:
                info = await asyncio.to_thread(
                    archive.write_archive, home, self.config.root / "snapshots" / name, exclude=(MODULES,)
                )
            except OSError as exc:
                raise ProviderError(
                    self.kind.value, "snapshot", f"archive failed: {exc}", retryable=False
                ) from None
            finally:
                processes.signal_all(frozen, signal.SIGCONT)
        return ProviderArtifact(kind, name, size_bytes=info.size_bytes, sha256=info.sha256)

    async def over_limits(self, refs: Sequence[ProviderSandbox]) -> dict[str, str]:
        """The sandboxes whose home holds more than `SANDBOX_LOCAL_MAX_DISK_MB`, with why."""
        over: dict[str, str] = {}
        for ps in refs:
            reason = await self._over_disk_limit(ps.sandbox_id)
            if reason is not None:
                over[ps.sandbox_id] = reason
        return over

    async def _over_disk_limit(self, sandbox_id: str) -> str | None:
        # The base layer's modules are the tool cache's, not the user's (archives leave them out).
        home = self._dir(sandbox_id) / "home"
        if not home.is_dir():
            return None
        size_mb = await asyncio.to_thread(files.tree_size, home, home / MODULES) // (1024 * 1024)
        if size_mb <= self.config.max_disk_mb:
            return None
        return f"home is {size_mb} MB, over the {self.config.max_disk_mb} MB limit"

    async def resume(self, ps: ProviderSandbox) -> ProviderSandbox:
        root = self._root(ps.sandbox_id)
        if root is None:
            raise SandboxGone(self.kind.value, "resume")
        async with self._locked(ps.sandbox_id):
            await asyncio.to_thread(processes.thaw, ps.sandbox_id, root)
        return ps

    async def terminate(self, ps: ProviderSandbox) -> None:
        base = self._dir(ps.sandbox_id)
        if not base.exists():
            return
        root = self._root(ps.sandbox_id)
        await asyncio.to_thread(processes.kill_tree, ps.sandbox_id, root)
        child = self._children.pop(ps.sandbox_id, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(2)
        await asyncio.to_thread(shutil.rmtree, base, True)
        if base.exists():
            raise ProviderError(
                self.kind.value, "terminate", "the sandbox directory could not be removed", retryable=True
            )

    async def delete_artifact(self, art: ArtifactRef) -> None:
        if art.kind is ArtifactKind.PAUSE:
            return  # the paused sandbox is the artifact; terminate removes it
        with contextlib.suppress(FileNotFoundError):
            self._snapshot_path(art.provider_ref).unlink()

    async def health(self) -> Health:
        try:
            probe = self.config.root / "sandboxes" / f".health-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            return Health(False, f"SANDBOX_LOCAL_ROOT is not writable: {exc.strerror}")
        if not self.agent_command and (
            self.config.opencode_bin is None or not self.config.opencode_bin.exists()
        ):
            return Health(False, "the OpenCode binary is missing (make opencode, or set OPENCODE_BIN)")
        return Health(True, f"isolation={self.config.isolation}")


def sandbox_rlimits() -> dict[str, int]:
    """§5.9.5 limits, capped at the host's hard limits (which an unprivileged service cannot raise)."""
    import resource

    wanted = {"nproc": (NPROC, resource.RLIMIT_NPROC), "nofile": (NOFILE, resource.RLIMIT_NOFILE)}
    limits = {}
    for name, (value, which) in wanted.items():
        hard = resource.getrlimit(which)[1]
        limits[name] = value if hard == resource.RLIM_INFINITY else min(value, hard)
    return limits


def _limited(argv: list[str]) -> list[str]:
    """The rlimits for the whole sandbox tree, where `prlimit` exists."""
    prlimit = shutil.which("prlimit")
    if not prlimit:
        return argv
    limits = sandbox_rlimits()
    return [prlimit, f"--nproc={limits['nproc']}", f"--nofile={limits['nofile']}", "--", *argv]


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _chown_tree(path: Path, uid: int) -> None:
    os.lchown(path, uid, uid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(dirpath, name), uid, uid)


def _created_at(entry: Path) -> datetime | None:
    try:
        return datetime.fromisoformat((entry / "run" / "created_at").read_text().strip())
    except (OSError, ValueError):
        try:
            return datetime.fromtimestamp(entry.stat().st_mtime, UTC)
        except OSError:
            return None
