"""`make dev` hook (proliferate.devkit.launcher): the local provider is the default, its
sandboxes live under `.dev/sandboxes`, and they call the gateway `make dev` serves."""

from __future__ import annotations

import shutil
from typing import Any

from proliferate.agent_contract import OPENCODE_VERSION
from proliferate.devkit.paths import opencode_base_dir, opencode_bin


def dev_environment(ctx: Any) -> dict[str, dict[str, str]]:
    root = ctx.dev_dir / "sandboxes"
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    env = {
        "DEFAULT_SANDBOX_PROVIDER": "local",
        "SANDBOX_LOCAL_ROOT": str(root),
        "SANDBOX_CALLBACK_BASE_URL": ctx.gateway_url,
        "SANDBOX_ALLOW_INSECURE_GIT_URLS": "true",
        "OPENCODE_BIN": str(opencode_bin()),
        "SANDBOX_LOCAL_PLUGIN_DIR": str(opencode_base_dir(OPENCODE_VERSION)),
    }
    if shutil.which("bwrap") is None:
        # A developer's own machine without bubblewrap: trusted, so process isolation is accepted.
        env["SANDBOX_LOCAL_ALLOW_UNISOLATED"] = "true"
    return {"sandbox": env}


async def dev_after_start(ctx: Any) -> list[str]:
    isolation = "bubblewrap" if shutil.which("bwrap") else "process (no bubblewrap)"
    return [f"sandboxes: local provider, {isolation}, under {ctx.dev_dir / 'sandboxes'}"]
