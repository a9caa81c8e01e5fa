"""Running sandbox processes as `SANDBOX_LOCAL_UID` when the service is root.

`setpriv` switches the user in the child after exec, so the service can spawn with vfork:
forking a process that runs gRPC's threads (what `Popen(user=...)` must do) can crash the
child before it execs. Without `setpriv`, `Popen(user=...)` is the fallback.
"""

from __future__ import annotations

import os
import shutil
from typing import Any


def switch_needed(uid: int | None) -> bool:
    return uid is not None and uid != 0 and os.geteuid() == 0


def as_user(argv: list[str], uid: int | None) -> tuple[list[str], dict[str, Any]]:
    """(argv, Popen kwargs) that run `argv` as `uid` (unchanged when no switch is needed)."""
    if not switch_needed(uid):
        return argv, {}
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", *argv], {}
    return argv, {"user": uid, "group": uid, "extra_groups": []}
