"""The local provider's own rules (sandbox-provider.md §5.9, §10 items 22-24): safe archives,
isolation refused without opt-in, capacity and port blocks, host-side file safety."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import zstandard
from proliferate.devkit.pytest_plugin import TEST_SERVICE_AUTH_SECRET
from proliferate.kit.errors import RemoteError
from proliferate.kit.settings import load_settings
from proliferate.sandbox.bootstrap import build_providers
from proliferate.sandbox.providers.base import (
    ArtifactKind,
    ArtifactRef,
    ArtifactUnusable,
    CreateRequest,
    ProviderError,
)
from proliferate.sandbox.providers.local import archive, files
from proliferate.sandbox.providers.local.provider import LocalProvider
from proliferate.sandbox.settings import ProviderConfigError, Settings
from sandbox_support import Harness, ensure_request

BASE_ENV = {
    "DATABASE_URL": "postgresql://u:p@127.0.0.1:1/db",
    "NATS_URL": "nats://127.0.0.1:1",
    "SERVICE_AUTH_SECRET": TEST_SERVICE_AUTH_SECRET,
}


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sbx-local-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def settings(root: Path, **env: str) -> Settings:
    return load_settings(Settings, {**BASE_ENV, "SANDBOX_LOCAL_ROOT": str(root), **env})


def evil_archive(path: Path, name: str, *, link: str | None = None) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        ok = tarfile.TarInfo("workspace/ok.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        bad = tarfile.TarInfo(name)
        if link is not None:
            bad.type = tarfile.SYMTYPE
            bad.linkname = link
            tar.addfile(bad)
        else:
            bad.size = 4
            tar.addfile(bad, io.BytesIO(b"evil"))
    path.write_bytes(zstandard.ZstdCompressor().compress(buf.getvalue()))
    return archive.file_sha256(path)


class TestArchives:
    @pytest.mark.parametrize(
        ("member", "link"),
        [
            ("../escape", None),
            ("/abs/escape", None),
            ("workspace/../../x", None),
            ("workspace/l", "../../../etc"),
            ("l2", "/etc/passwd"),
        ],
    )
    def test_unsafe_members_are_rejected_before_anything_is_written(
        self, root: Path, member: str, link: str | None
    ) -> None:
        path = root / "evil.tar.zst"
        digest = evil_archive(path, member, link=link)
        dest = root / "out" / "home"
        with pytest.raises(archive.UnsafeArchive):
            archive.extract(path, dest, digest)
        assert not dest.exists() or list(dest.rglob("*")) == []
        assert not (root / "out" / "escape").exists() and not (root / "abs").exists()

    def test_digest_mismatch_is_corrupt(self, root: Path) -> None:
        src = root / "src"
        (src / "workspace").mkdir(parents=True)
        (src / "workspace" / "a.txt").write_text("a")
        info = archive.write_archive(src, root / "a.tar.zst")
        with pytest.raises(archive.ArchiveCorrupt):
            archive.extract(info.path, root / "dest", "0" * 64)
        archive.extract(info.path, root / "dest", info.sha256)
        assert (root / "dest" / "workspace" / "a.txt").read_text() == "a"

    async def test_restore_from_an_unsafe_archive_fails_cleanly(self, root: Path) -> None:
        provider = build_providers(
            settings(root, SANDBOX_LOCAL_ISOLATION="process", SANDBOX_LOCAL_ALLOW_UNISOLATED="true")
        ).get("local")
        assert isinstance(provider, LocalProvider)
        name = f"{uuid.uuid4()}.tar.zst"
        digest = evil_archive(root / "snapshots" / name, "../escape")
        with pytest.raises(ArtifactUnusable) as err:
            await provider.create(
                CreateRequest(
                    sandbox_id="s1", purpose="session", timeout_s=60, port_base=41000,
                    source=ArtifactRef("a", ArtifactKind.FILESYSTEM, name, digest),
                )
            )  # fmt: skip
        assert err.value.detail == "corrupt"
        assert not (root / "sandboxes" / "s1").exists() and not (root / "sandboxes" / "escape").exists()


class TestIsolation:
    def test_process_isolation_needs_an_explicit_opt_in(self, root: Path) -> None:
        with pytest.raises(ProviderConfigError) as err:
            build_providers(settings(root, SANDBOX_LOCAL_ISOLATION="process"))
        assert "SANDBOX_LOCAL_ALLOW_UNISOLATED" in str(err.value)
        assert build_providers(
            settings(root, SANDBOX_LOCAL_ISOLATION="process", SANDBOX_LOCAL_ALLOW_UNISOLATED="true")
        )

    def test_the_process_refuses_to_start_with_one_line(self, root: Path) -> None:
        env = {
            **BASE_ENV,
            "SANDBOX_LOCAL_ROOT": str(root),
            "SANDBOX_LOCAL_ISOLATION": "process",
            "PATH": os.environ["PATH"],
        }
        result = subprocess.run(
            [sys.executable, "-m", "proliferate.sandbox"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2
        assert (
            result.stderr.strip()
            .splitlines()[-1]
            .startswith("sandbox: local sandboxes would run without isolation")
        )

    @pytest.mark.parametrize(
        ("env", "fragment"),
        [
            ({"SANDBOX_ENABLED_PROVIDERS": "modal"}, "MODAL_TOKEN_ID/MODAL_TOKEN_SECRET are missing"),
            (
                {
                    "SANDBOX_ENABLED_PROVIDERS": "modal",
                    "MODAL_TOKEN_ID": "as-abc123",
                    "MODAL_TOKEN_SECRET": "ak-def456",
                },
                "swapped",
            ),
            ({"SANDBOX_ENABLED_PROVIDERS": "e2b"}, "E2B_API_KEY is missing"),
        ],
    )
    def test_an_enabled_provider_without_credentials_fails_startup(
        self, root: Path, env: dict[str, str], fragment: str
    ) -> None:
        with pytest.raises(ProviderConfigError) as err:
            build_providers(
                settings(
                    root, SANDBOX_LOCAL_ISOLATION="process", SANDBOX_LOCAL_ALLOW_UNISOLATED="true", **env
                )
            )
        assert fragment in str(err.value)

    def test_auto_detects_bwrap_here_when_it_works(self, root: Path) -> None:
        import shutil

        provider = build_providers(settings(root, SANDBOX_LOCAL_ALLOW_UNISOLATED="true")).get("local")
        expected = "bwrap" if shutil.which("bwrap") else "process"
        assert provider.isolation in (expected, "process")


class TestHostFiles:
    def test_paths_resolving_outside_the_sandbox_are_refused(self, root: Path) -> None:
        home, tmp = root / "home", root / "tmp"
        (home / "workspace").mkdir(parents=True)
        tmp.mkdir()
        os.symlink("/etc", home / "workspace" / "etc-link")
        mapping = files.Mapping("/home/user", "/tmp", home, tmp, None)
        with pytest.raises(files.PathOutside):
            files.write_file(mapping, "/home/user/workspace/etc-link/x", b"x", 0o644)
        with pytest.raises(files.PathOutside):
            files.read_file(mapping, "/home/user/workspace/etc-link/passwd", 100)
        with pytest.raises(files.PathOutside):
            files.write_file(mapping, "/home/user/../../etc/x", b"x", 0o644)
        with pytest.raises(files.PathOutside):
            files.write_file(mapping, "/etc/x", b"x", 0o644)
        files.write_file(mapping, "/home/user/workspace/a/b.txt", b"ok", 0o600)
        assert (home / "workspace/a/b.txt").read_bytes() == b"ok"
        assert oct((home / "workspace/a/b.txt").stat().st_mode & 0o777) == "0o600"


class TestCapacity:
    async def test_the_ninth_local_sandbox_is_refused_by_default(
        self, service_factory: Any, root: Path, org: str
    ) -> None:
        h: Harness = await service_factory(
            roles=("grpc",),
            DEFAULT_SANDBOX_PROVIDER="local",
            SANDBOX_ENABLED_PROVIDERS="local",
            SANDBOX_LOCAL_ROOT=str(root),
            SANDBOX_LOCAL_ISOLATION="process",
            SANDBOX_LOCAL_ALLOW_UNISOLATED="true",
            SANDBOX_LOCAL_HOST_ID="host-capacity",
        )
        assert h.ctx.settings.sandbox_local_max_sandboxes == 8
        async with h.db.engine.begin() as conn:
            for i in range(8):  # eight live sandboxes on this host
                await conn.execute(
                    sa.text(
                        "INSERT INTO sandboxes (id, organization_id, session_id, purpose, provider,"
                        " provider_namespace, status, host_id, port_base, expires_at)"
                        " VALUES (:id, :org, :s, 'session', 'local',"
                        " 'host-capacity', 'ready', 'host-capacity', :port, now() + interval '1 hour')"
                    ),
                    {"id": uuid.uuid4(), "org": uuid.UUID(org), "s": uuid.uuid4(), "port": 41000 + i * 8},
                )
        with pytest.raises(RemoteError) as err:
            await h.call("EnsureSandbox", ensure_request(org))
        assert (err.value.kind.value, err.value.code) == ("resource_exhausted", "local_capacity")
        assert list((root / "sandboxes").iterdir()) == []

    async def test_port_blocks_exhausted(self, service_factory: Any, root: Path, org: str) -> None:
        h: Harness = await service_factory(
            roles=("grpc",),
            DEFAULT_SANDBOX_PROVIDER="local",
            SANDBOX_ENABLED_PROVIDERS="local",
            SANDBOX_LOCAL_ROOT=str(root),
            SANDBOX_LOCAL_ISOLATION="process",
            SANDBOX_LOCAL_ALLOW_UNISOLATED="true",
            SANDBOX_LOCAL_HOST_ID="host-ports",
            SANDBOX_LOCAL_PORT_RANGE="41000-41007",
        )
        async with h.db.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO sandboxes (id, organization_id, session_id, purpose, provider,"
                    " provider_namespace, status, host_id, port_base, expires_at)"
                    " VALUES (:id, :org, :s, 'session', 'local',"
                    " 'host-ports', 'ready', 'host-ports', 41000, now() + interval '1 hour')"
                ),
                {"id": uuid.uuid4(), "org": uuid.UUID(org), "s": uuid.uuid4()},
            )
        with pytest.raises(RemoteError) as err:
            await h.call("EnsureSandbox", ensure_request(org))
        assert err.value.code == "port_range_exhausted"


class TestHosts:
    async def test_a_sandbox_of_another_host_is_wrong_host(
        self, service_factory: Any, root: Path, org: str
    ) -> None:
        from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb

        h: Harness = await service_factory(
            roles=("grpc",),
            DEFAULT_SANDBOX_PROVIDER="local",
            SANDBOX_ENABLED_PROVIDERS="local",
            SANDBOX_LOCAL_ROOT=str(root),
            SANDBOX_LOCAL_ISOLATION="process",
            SANDBOX_LOCAL_ALLOW_UNISOLATED="true",
            SANDBOX_LOCAL_HOST_ID="host-a",
        )
        sandbox_id = uuid.uuid4()
        async with h.db.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO sandboxes (id, organization_id, session_id, purpose, provider,"
                    " provider_namespace, provider_sandbox_id, status, host_id, port_base, expires_at)"
                    " VALUES (:id, :org, :s, 'session', 'local', 'host-b', :id, 'ready', 'host-b', 41000,"
                    " now() + interval '1 hour')"
                ),
                {"id": sandbox_id, "org": uuid.UUID(org), "s": uuid.uuid4()},
            )
        with pytest.raises(RemoteError) as err:
            await h.call(
                "ExecCommand",
                pb.ExecCommandRequest(organization_id=org, sandbox_id=str(sandbox_id), argv=["true"]),
            )
        assert (err.value.kind.value, err.value.code) == ("failed_precondition", "wrong_host")


class TestDiskLimit:
    async def test_a_home_over_the_disk_limit_is_reported_and_cannot_be_snapshotted(self, root: Path) -> None:
        provider = build_providers(
            settings(
                root,
                SANDBOX_LOCAL_ISOLATION="process",
                SANDBOX_LOCAL_ALLOW_UNISOLATED="true",
                SANDBOX_LOCAL_MAX_DISK_MB="16",
            )
        ).get("local")
        assert isinstance(provider, LocalProvider)
        small = await provider.create(
            CreateRequest(sandbox_id="small", purpose="session", timeout_s=60, port_base=41000)
        )
        big = await provider.create(
            CreateRequest(sandbox_id="big", purpose="session", timeout_s=60, port_base=41008)
        )
        try:
            (Path(big.home_dir) / "workspace" / "data.bin").write_bytes(b"\0" * (20 * 1024 * 1024))
            (Path(small.home_dir) / "workspace" / "data.bin").write_bytes(b"\0" * (4 * 1024 * 1024))
            over = await provider.over_limits([small, big])
            assert list(over) == ["big"] and "over the 16 MB limit" in over["big"]
            with pytest.raises(ProviderError) as err:
                await provider.snapshot(big, ArtifactKind.FILESYSTEM)
            assert "limits_exceeded" in err.value.message
        finally:
            for box in (small, big):
                await provider.terminate(box)
