"""How the supervisor and router authenticate to the agent.

OpenCode listens on loopback, which local sandboxes on the host network share with every other
sandbox of the host: without a password any of them could drive this agent. Each supervisor makes a
random `OPENCODE_SERVER_PASSWORD` for its agent (unless `session.env` sets one), keeps it in memory
only, and adds it as basic auth to everything it forwards to the agent.
"""

from __future__ import annotations

import base64

from proliferate.sandbox_mcp.runtime import Runtime

AGENT_PASSWORD_KEY = "OPENCODE_SERVER_PASSWORD"  # noqa: S105 - the variable's name
AGENT_USERNAME_KEY = "OPENCODE_SERVER_USERNAME"


def agent_credentials(rt: Runtime) -> tuple[str, str]:
    password = rt.session_env.get(AGENT_PASSWORD_KEY) or rt.agent_password
    return rt.session_env.get(AGENT_USERNAME_KEY, "opencode"), password


def agent_env(rt: Runtime) -> dict[str, str]:
    """What the agent process needs to require that password."""
    user, password = agent_credentials(rt)
    return {AGENT_PASSWORD_KEY: password, AGENT_USERNAME_KEY: user}


def agent_auth_headers(rt: Runtime) -> dict[str, str]:
    user, password = agent_credentials(rt)
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
