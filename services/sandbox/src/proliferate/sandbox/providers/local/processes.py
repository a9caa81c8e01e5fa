"""The process tree of one local sandbox: the root recorded in `run/supervisor.pid` (pid and
start time, so a recycled pid is never mistaken for it), its descendants, and every process
whose environment carries `PROLIFERATE_SANDBOX_ID=<id>` (CONTRACT.md)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

MARKER = "PROLIFERATE_SANDBOX_ID"


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return int(fields[19])


def state(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()[0]


def write_pidfile(path: Path, pid: int) -> None:
    started = start_time(pid)
    path.write_text(f"{pid} {started or 0}\n")


def read_pidfile(path: Path) -> tuple[int, int] | None:
    try:
        pid, started = path.read_text().split()
        return int(pid), int(started)
    except (OSError, ValueError):
        return None


def root_alive(pidfile: Path) -> int | None:
    """The root pid when it still runs (same start time), else None."""
    recorded = read_pidfile(pidfile)
    if recorded is None:
        return None
    pid, started = recorded
    current = start_time(pid)
    if current is None or current != started or state(pid) == "Z":
        return None
    return pid


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _ppid(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(raw.rsplit(")", 1)[1].split()[1])


def _has_marker(pid: int, sandbox_id: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{MARKER}={sandbox_id}".encode() in environ.split(b"\0")


def members(sandbox_id: str, root: int | None) -> set[int]:
    """Every live process of the sandbox."""
    me = os.getpid()
    pids = [p for p in _all_pids() if p != me]
    parents = {p: _ppid(p) for p in pids}
    found = {p for p in pids if _has_marker(p, sandbox_id)}
    if root is not None:
        found.add(root)
    changed = True
    while changed:  # descendants of anything already found
        changed = False
        for pid, parent in parents.items():
            if pid not in found and parent in found:
                found.add(pid)
                changed = True
    return {p for p in found if state(p) not in (None, "Z")}


def signal_all(pids: set[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def freeze(sandbox_id: str, root: int | None) -> set[int]:
    """SIGSTOP the tree until no new member appears (a fork racing the first pass)."""
    stopped: set[int] = set()
    for _ in range(5):
        current = members(sandbox_id, root) - stopped
        if not current:
            break
        signal_all(current, signal.SIGSTOP)
        stopped |= current
    return stopped


def thaw(sandbox_id: str, root: int | None) -> None:
    signal_all(members(sandbox_id, root), signal.SIGCONT)


def kill_tree(sandbox_id: str, root: int | None, grace_s: float = 10.0) -> None:
    """SIGTERM (thawed first, so stopped processes can act on it), wait, then SIGKILL."""
    pids = members(sandbox_id, root)
    if not pids:
        return
    signal_all(pids, signal.SIGCONT)
    signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not members(sandbox_id, root):
            return
        time.sleep(0.1)
    for _ in range(3):
        remaining = members(sandbox_id, root)
        if not remaining:
            return
        signal_all(remaining, signal.SIGKILL)
        time.sleep(0.1)
