"""How the supervisor and router authenticate to the agent (OpenCode's optional server password)."""

from __future__ import annotations

import base64

from proliferate.sandbox_mcp.runtime import Runtime


def agent_auth_headers(rt: Runtime) -> dict[str, str]:
    """Basic auth for OpenCode when the session sets `OPENCODE_SERVER_PASSWORD`, else nothing."""
    password = rt.session_env.get("OPENCODE_SERVER_PASSWORD")
    if not password:
        return {}
    user = rt.session_env.get("OPENCODE_SERVER_USERNAME", "opencode")
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
