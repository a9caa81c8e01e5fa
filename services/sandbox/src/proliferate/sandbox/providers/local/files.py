"""Host-side file I/O of local sandboxes. Sandbox paths map onto the sandbox's `home/` and
`tmp/`; a path that resolves (symlinks included) outside them is refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from proliferate.sandbox.providers.base import FileChunk, ReadLimits

CHUNK = 1024 * 1024


class PathOutside(Exception):
    """A sandbox path that leaves the sandbox's tree."""


@dataclass(frozen=True)
class Mapping:
    """Sandbox view → host directories of one sandbox."""

    home_view: str
    tmp_view: str
    home_host: Path
    tmp_host: Path
    uid: int | None

    def host(self, sandbox_path: str) -> tuple[Path, Path]:
        """(host path, the root it must stay in), without resolving the final component."""
        for view, root in ((self.home_view, self.home_host), (self.tmp_view, self.tmp_host)):
            view = view.rstrip("/")
            if sandbox_path == view or sandbox_path.startswith(view + "/"):
                rel = sandbox_path[len(view) :].lstrip("/")
                if any(part == ".." for part in rel.split("/")):
                    raise PathOutside(sandbox_path)
                return (root / rel if rel else root), root
        raise PathOutside(sandbox_path)


def _inside(path: Path, root: Path) -> bool:
    real_root = root.resolve()
    real = path.resolve()
    return real == real_root or real_root in real.parents


def _chown(path: Path, uid: int | None) -> None:
    if uid is not None and os.geteuid() == 0:
        os.lchown(path, uid, uid)


def ensure_dirs(directory: Path, root: Path, uid: int | None) -> None:
    """mkdir -p inside `root`, owned by the sandbox user; refuses a parent symlinked outside."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    if not _inside(current, root):
        raise PathOutside(str(directory))
    for path in reversed(missing):
        path.mkdir(mode=0o755)
        _chown(path, uid)


def write_file(mapping: Mapping, sandbox_path: str, content: bytes, mode: int) -> None:
    target, root = mapping.host(sandbox_path)
    ensure_dirs(target.parent, root, mapping.uid)
    if not _inside(target.parent, root):
        raise PathOutside(sandbox_path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
        if mapping.uid is not None and os.geteuid() == 0:
            os.fchown(fd, mapping.uid, mapping.uid)
    finally:
        os.close(fd)
    os.replace(tmp, target)  # replaces a symlink itself, never what it points to


def read_file(mapping: Mapping, sandbox_path: str, max_bytes: int) -> bytes | None:
    target, root = mapping.host(sandbox_path)
    if not target.exists():
        return None
    if not _inside(target, root):
        raise PathOutside(sandbox_path)
    if not target.is_file():
        return None
    with open(target, "rb") as f:
        return f.read(max_bytes)


def remove_file(mapping: Mapping, sandbox_path: str) -> None:
    target, root = mapping.host(sandbox_path)
    if not target.is_symlink() and not target.exists():
        return
    if not _inside(target.parent, root):
        raise PathOutside(sandbox_path)
    if target.is_dir() and not target.is_symlink():
        return
    target.unlink(missing_ok=True)


def read_tree(mapping: Mapping, folder: str, limits: ReadLimits) -> Iterator[FileChunk]:
    """Files under `folder`, recursively, with relative paths; caps enforced (skipped files are
    listed with a reason). A missing folder yields nothing."""
    base, root = mapping.host(folder)
    if not base.is_dir() or not _inside(base, root):
        if base.exists() and not _inside(base, root):
            raise PathOutside(folder)
        return
    count = 0
    total = 0
    for path in sorted(_walk(base, root)):
        rel = path.relative_to(base).as_posix()
        size = path.stat().st_size
        skip = limits.skip_reason(count, total, size)
        if skip is not None:
            yield FileChunk(rel, size=size, skipped=True, skip_reason=skip)
            continue
        count += 1
        total += size
        with open(path, "rb") as f:
            offset = 0
            while True:
                data = f.read(CHUNK)
                eof = offset + len(data) >= size or not data
                yield FileChunk(rel, data, offset, eof, size)
                offset += len(data)
                if eof:
                    break


def _walk(base: Path, root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        current = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not (current / d).is_symlink())
        for name in filenames:
            path = current / name
            if path.is_symlink() and not _inside(path, root):
                continue
            if path.is_file():
                yield path


def tree_size(path: Path, exclude: Path | None = None) -> int:
    """Bytes of the files under `path`, links not followed, the `exclude` subtree left out."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        if exclude is not None:
            dirnames[:] = [d for d in dirnames if Path(dirpath, d) != exclude]
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total
