"""The supervisor's shared state: layout, config, the session env, the token and boot status."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from typing import Any

import msgspec
from proliferate.sandbox_mcp.auth import TokenStore
from proliferate.sandbox_mcp.credential_helper import git_config_env
from proliferate.sandbox_mcp.envfile import TOKEN_KEY
from proliferate.sandbox_mcp.layout import Layout, SupervisorConfig, write_atomic


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class BootStatus:
    """`HOME/.proliferate/boot-status.json`, rewritten atomically on every change (served at `/api/boot`)."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout
        self.doc: dict[str, Any] = {
            "started_at": now_iso(),
            "updated_at": now_iso(),
            "state": "waiting_for_config",
            "processes": {},
            "phase2": {"state": "pending", "steps": []},
        }

    def update(self, **fields: Any) -> None:
        self.doc.update(fields)
        self.flush()

    def process(self, name: str, **fields: Any) -> None:
        self.doc["processes"].setdefault(name, {}).update(fields)
        self.flush()

    def phase2(self, **fields: Any) -> None:
        self.doc["phase2"].update(fields)
        self.flush()

    def phase2_step(self, step: dict[str, Any]) -> None:
        steps = self.doc["phase2"]["steps"]
        for i, existing in enumerate(steps):
            if existing["kind"] == step["kind"] and existing["name"] == step["name"]:
                steps[i] = {**existing, **step}
                break
        else:
            steps.append(step)
        self.flush()

    def flush(self) -> None:
        self.doc["updated_at"] = now_iso()
        # A read-only or vanished home must not take the supervisor down.
        with contextlib.suppress(OSError):
            write_atomic(self._layout.boot_status_json, msgspec.json.encode(self.doc))


class Runtime:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.config: SupervisorConfig | None = None
        self.session_env: dict[str, str] = {}
        self.tokens = TokenStore()
        self.boot = BootStatus(layout)
        self.agent_password = secrets.token_urlsafe(32)  # memory only; see supervisor_auth

    def set_session_env(self, env: dict[str, str]) -> None:
        self.session_env = env
        self.tokens.set(env.get(TOKEN_KEY))

    def child_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The env of everything the supervisor starts: its own env, `session.env`, runtime locations."""
        env = dict(os.environ)
        env.update(git_config_env())
        env.update(self.session_env)
        env.update(
            {
                "HOME": str(self.layout.home),
                "TMPDIR": str(self.layout.tmp),
                "PROLIFERATE_HOME": str(self.layout.home),
                "PROLIFERATE_TMP": str(self.layout.tmp),
            }
        )
        if self.config is not None:
            env["PROLIFERATE_MCP_URL"] = f"http://127.0.0.1:{self.config.ports.api}"
        env.update(extra or {})
        return env


def kill_group(pid: int, sig: int = signal.SIGTERM) -> bool:
    """Signal a process group led by `pid` (every child was started in its own session)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True
