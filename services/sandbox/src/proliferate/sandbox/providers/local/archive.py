"""Local snapshots: `tar.zst` archives of a sandbox home, with sha256 and safe extraction.

Writing streams the tree into `<name>.tar.zst.tmp` while hashing the compressed bytes, then
fsyncs and renames, so a reader never sees half an archive. Extraction first checks the
digest, then every member: no absolute paths, no `..`, no devices or fifos, no links that
leave the tree; only then does it extract (with tarfile's `data` filter as a second guard).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

import zstandard

CHUNK = 1024 * 1024


class UnsafeArchive(Exception):
    """The archive holds a member that would escape or is not a plain file, dir or safe link."""


class ArchiveCorrupt(Exception):
    pass


@dataclass(frozen=True)
class ArchiveInfo:
    path: Path
    size_bytes: int
    sha256: str


class _HashingWriter:
    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def _filter_out(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    # Sockets, fifos and devices are skipped (tarfile cannot store sockets anyway).
    if info.isdev() or info.isfifo():
        return None
    return info


def write_archive(source: Path, dest: Path, *, level: int = 3, exclude: tuple[str, ...] = ()) -> ArchiveInfo:
    """Stream `source` (its contents, relative names, minus `exclude`) into `dest`; atomic and fsynced."""

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if any(info.name == e or info.name.startswith(e + "/") for e in exclude):
            return None
        return _filter_out(info)

    tmp = dest.with_name(dest.name + ".tmp")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as raw:
        hashing = _HashingWriter(raw)
        compressor = zstandard.ZstdCompressor(level=level, threads=-1)
        with (
            compressor.stream_writer(hashing, closefd=False) as zstd_out,  # type: ignore[arg-type]
            tarfile.open(fileobj=zstd_out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name in sorted(os.listdir(source)):
                tar.add(source / name, arcname=name, recursive=True, filter=keep)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, dest)
    return ArchiveInfo(dest, hashing.size, hashing.digest.hexdigest())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _members(path: Path) -> Iterator[tarfile.TarInfo]:
    with open(path, "rb") as raw:
        reader = zstandard.ZstdDecompressor().stream_reader(raw)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            yield from tar


def check_member(info: tarfile.TarInfo) -> None:
    name = info.name
    parts = PurePosixPath(name).parts
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        raise UnsafeArchive(f"absolute path in archive: {name[:200]}")
    if ".." in parts:
        raise UnsafeArchive(f"'..' in archive path: {name[:200]}")
    if info.isdev() or info.isfifo():
        raise UnsafeArchive(f"device or fifo in archive: {name[:200]}")
    if info.issym() or info.islnk():
        target = info.linkname
        if target.startswith("/"):
            raise UnsafeArchive(f"link to an absolute path in archive: {name[:200]}")
        base = PurePosixPath(name).parent if info.issym() else PurePosixPath()
        depth = 0
        for part in (base / target).parts:
            depth = depth - 1 if part == ".." else depth + (part not in ("", "."))
            if depth < 0:
                raise UnsafeArchive(f"link leaving the tree in archive: {name[:200]}")
    if not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
        raise UnsafeArchive(f"unsupported member type in archive: {name[:200]}")


def verify(path: Path, expected_sha256: str | None) -> None:
    """Digest first (cheap to fail), then every member, before anything is extracted."""
    if not path.exists():
        raise FileNotFoundError(path)
    if expected_sha256 and file_sha256(path) != expected_sha256:
        raise ArchiveCorrupt("archive digest does not match its record")
    try:
        for info in _members(path):
            check_member(info)
    except (tarfile.TarError, zstandard.ZstdError, EOFError) as exc:
        raise ArchiveCorrupt(f"archive unreadable: {exc}") from None


def extract(path: Path, dest: Path, expected_sha256: str | None) -> None:
    verify(path, expected_sha256)
    dest.mkdir(parents=True, exist_ok=True)
    with open(path, "rb") as raw:
        reader = zstandard.ZstdDecompressor().stream_reader(raw)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for info in tar:
                check_member(info)
                tar.extract(info, dest, filter="data")
