"""A10: `make dev` brings up all ten services; Ctrl-C leaves no process; a second run reuses its data."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import psycopg
from proliferate.devkit.infra import free_port
from proliferate.devkit.paths import repo_root
from proliferate.devkit.pytest_plugin import register_log_file
from proliferate.kit.topology import SERVICES

READY_WITHIN_S = 120


def start_make_dev(dev_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "NATS_URL", "TEST_DATABASE_URL", "TEST_NATS_URL")
    }
    env.update({"PROLIFERATE_DEV_DIR": str(dev_dir), "GATEWAY_PORT": str(port), "NO_COLOR": "1"})
    register_log_file(log)
    with open(log, "ab") as out:
        return subprocess.Popen(
            ["make", "dev"],
            cwd=repo_root(),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def launcher_lines(log: Path) -> str:
    """The launcher's own lines (steps, failures) and the last service lines, for a failure message."""
    lines = log.read_text(errors="replace").splitlines()
    own = [line for line in lines if not line[:14].rstrip().endswith("|") and " | " not in line[:16]]
    return "\n".join([*own[-40:], "--- last lines ---", *lines[-15:]])


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> dict[str, str]:
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"make dev exited early:\n{launcher_lines(log)}"
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if response.status_code == 200:
                checks: dict[str, str] = response.json()["checks"]
                return checks
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"/readyz not 200 within {READY_WITHIN_S}s:\n{launcher_lines(log)}")


def ctrl_c(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """Send SIGINT to the foreground group, as a terminal does; return the tree it had."""
    tree = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(90)
    return tree


def alive(processes: list[psutil.Process]) -> list[str]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not left:
            return []
        time.sleep(0.2)
    return [" ".join(p.cmdline()[:3]) for p in left]


def test_make_dev_runs_everything_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    dev_dir = tmp_path / "dev"
    port = free_port()
    log = tmp_path / "make-dev-1.log"
    proc = start_make_dev(dev_dir, port, log)
    try:
        checks = wait_ready(proc, port, log)
        assert checks == dict.fromkeys(SERVICES, "SERVING")
        output = log.read_text()
        assert f"http://127.0.0.1:{port}" in output
        for service in SERVICES:
            assert f"{service.ljust(12)} | " in output  # every line prefixed with its service
        # Leave a mark in the platform database for the second run to find.
        pg_port = (dev_dir / "postgres.port").read_text().strip()
        password = (dev_dir / "postgres" / "superuser.password").read_text().strip()
        admin = f"postgresql://postgres:{password}@127.0.0.1:{pg_port}/proliferate"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE TABLE public.dev_marker (note text)")
            conn.execute("INSERT INTO public.dev_marker VALUES ('first run')")
        tree = ctrl_c(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert len(tree) >= len(SERVICES) + 2  # services, Postgres, NATS (and uv, python)
    assert alive(tree) == []

    log2 = tmp_path / "make-dev-2.log"
    proc = start_make_dev(dev_dir, port, log2)
    try:
        wait_ready(proc, port, log2)
        pg_port = (dev_dir / "postgres.port").read_text().strip()
        with psycopg.connect(f"postgresql://postgres:{password}@127.0.0.1:{pg_port}/proliferate") as conn:
            assert conn.execute("SELECT note FROM public.dev_marker").fetchall() == [("first run",)]
        tree = ctrl_c(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert alive(tree) == []
