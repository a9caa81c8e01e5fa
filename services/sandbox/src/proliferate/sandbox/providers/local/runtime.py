"""The interpreter that runs `proliferate.sandbox_mcp` inside local sandboxes.

Sandbox processes run as `SANDBOX_LOCAL_UID` when the service is root, so the interpreter
must be executable by that user. The service's own interpreter often is not (a pyenv under
`/root`): then a system `python3` of the same minor version runs the same packages through
`PYTHONPATH` (the service environment's site-packages and editable sources). Detected once
at startup by a probe that imports the runtime as that user; never assumed.
"""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from proliferate.sandbox.providers.local.users import as_user

PROBE = "import proliferate.sandbox_mcp, aiohttp, httpx, msgspec"


class RuntimeUnavailable(Exception):
    pass


@dataclass(frozen=True)
class SandboxRuntime:
    python: str
    pythonpath: tuple[str, ...]
    bin_dir: Path  # `proliferate` and `git-credential-proliferate` wrappers

    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": ":".join(self.pythonpath)} if self.pythonpath else {}

    def mounts(self) -> list[str]:
        """Directories bwrap must bind read-only for this runtime (outside /usr)."""
        paths = set(self.pythonpath)
        real = Path(self.python).resolve()
        if not str(real).startswith("/usr/"):
            paths.add(str(real.parent.parent))
            paths.add(str(Path(self.python).parent.parent))
        return sorted(p for p in paths if Path(p).exists())


_PROBES: dict[tuple[str, tuple[str, ...], int | None], bool] = {}


def _probe(python: str, pythonpath: tuple[str, ...], uid: int | None) -> bool:
    """Memoized per process: the answer does not change while the service runs."""
    key = (python, pythonpath, uid)
    if key not in _PROBES:
        _PROBES[key] = _run_probe(python, pythonpath, uid)
    return _PROBES[key]


def _run_probe(python: str, pythonpath: tuple[str, ...], uid: int | None) -> bool:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/",
        **({"PYTHONPATH": ":".join(pythonpath)} if pythonpath else {}),
    }
    # Exec'd from a shell already running as the user: the way every sandbox process starts it
    # (an exec straight from `setpriv` can succeed where those would not).
    argv, kwargs = as_user(["/bin/sh", "-c", 'exec "$0" -c "$1"', python, PROBE], uid)
    try:
        result = subprocess.run(
            argv, env=env, cwd="/", capture_output=True, timeout=30, check=False, **kwargs
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _service_paths() -> tuple[str, ...]:
    """This environment's site-packages and the editable sources its `.pth` files name."""
    paths: list[str] = []
    for packages in site.getsitepackages():
        if not Path(packages).is_dir():
            continue
        paths.append(packages)
        for pth in sorted(Path(packages).glob("*.pth")):
            for line in pth.read_text().splitlines():
                if line.startswith("/") and Path(line).is_dir():
                    paths.append(line)
    return tuple(dict.fromkeys(paths))


def _system_python() -> str | None:
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/bin/{minor}", f"/usr/local/bin/{minor}", shutil.which(minor)):
        if candidate and Path(candidate).exists() and not str(Path(candidate).resolve()).startswith("/root"):
            return candidate
    return None


def prepare(root: Path, configured: str, uid: int | None) -> SandboxRuntime:
    python = configured or sys.executable
    pythonpath: tuple[str, ...] = ()
    if not _probe(python, pythonpath, uid):
        fallback = _system_python() if not configured else None
        pythonpath = _service_paths()
        if fallback is not None and _probe(fallback, pythonpath, uid):
            python = fallback
        elif not _probe(python, pythonpath, uid):
            who = f"user {uid}" if uid is not None else "the sandbox user"
            raise RuntimeUnavailable(
                f"{python} cannot run proliferate.sandbox_mcp as {who}: set SANDBOX_LOCAL_PYTHON to an "
                "interpreter that user can execute (with the sandbox-mcp package installed)"
            )
    bin_dir = root / "runtime" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for path in (root / "runtime", bin_dir):
        path.chmod(0o755)
    wrappers = {
        "proliferate": "from proliferate.sandbox_mcp.cli import main",
        "git-credential-proliferate": "from proliferate.sandbox_mcp.credential_helper import main",
    }
    for name, statement in wrappers.items():
        script = bin_dir / name
        script.write_text(
            f'#!/bin/sh\nexec {python} -c "import sys; {statement}; sys.exit(main(sys.argv[1:]))" "$@"\n'
        )
        script.chmod(0o755)
    return SandboxRuntime(python, pythonpath, bin_dir)
