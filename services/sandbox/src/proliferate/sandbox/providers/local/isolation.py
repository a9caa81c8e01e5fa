"""Which isolation local sandboxes get (sandbox-provider.md §5.9.1), detected at startup.

`namespaced` needs bubblewrap and passt's `pasta`; `bwrap` needs a working bubblewrap;
`process` (no isolation at all) is refused unless explicitly allowed.
"""

from __future__ import annotations

import functools
import shutil
import subprocess

from proliferate.sandbox.providers.local.users import as_user


class IsolationUnavailable(Exception):
    """The one line an operator sees when local sandboxes cannot start safely."""


@functools.cache
def _bwrap_works(bwrap: str, uid: int | None) -> bool:
    argv = [
        bwrap,
        "--unshare-user",
        "--unshare-pid",
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "true",
    ]
    argv, kwargs = as_user(argv, uid)
    try:
        result = subprocess.run(argv, capture_output=True, timeout=10, check=False, **kwargs)
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def detect(mode: str, *, allow_unisolated: bool, uid: int | None) -> str:
    """The isolation to use for `SANDBOX_LOCAL_ISOLATION=mode` (auto | namespaced | bwrap | process)."""
    bwrap = shutil.which("bwrap")
    pasta = shutil.which("pasta")
    bwrap_ok = bwrap is not None and _bwrap_works(bwrap, uid)
    if mode == "auto":
        # `namespaced` needs pasta for the sandbox's own network; without it bwrap shares the host's.
        chosen = "namespaced" if bwrap_ok and pasta else ("bwrap" if bwrap_ok else "process")
    else:
        chosen = mode
    if chosen == "namespaced" and not (bwrap_ok and pasta):
        raise IsolationUnavailable("SANDBOX_LOCAL_ISOLATION=namespaced needs a working bwrap and pasta")
    if chosen == "namespaced":
        chosen = "bwrap"  # the pasta network namespace is not implemented: bwrap on the host network
    if chosen == "bwrap" and not bwrap_ok:
        raise IsolationUnavailable(
            "SANDBOX_LOCAL_ISOLATION=bwrap but bubblewrap is missing or does not work here"
        )
    if chosen == "process" and not allow_unisolated:
        raise IsolationUnavailable(
            "local sandboxes would run without isolation (no working bubblewrap): install bubblewrap "
            "or set SANDBOX_LOCAL_ALLOW_UNISOLATED=true to accept `process` isolation"
        )
    return chosen
