from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from proliferate.agent_contract import (
    AgentConfig,
    Capabilities,
    ManifestInput,
    PromptMode,
    SessionFacts,
    render_system_prompt,
)

GOLDEN = Path(__file__).parent / "golden"
RUN_ID = uuid.UUID("0190d9a8-7c1e-7000-8000-000000000001")
CAPS = Capabilities(docker=False, playwright_mcp=False, vscode=True, languages=("Node.js 20", "Python 3.11"))

FACTS: dict[PromptMode, SessionFacts] = {
    "setup": SessionFacts(session_type="setup", client_type="web", repo_names=("acme/api",)),
    "coding": SessionFacts(session_type="coding", client_type="web", repo_names=("acme/api", "acme/web")),
    "automation": SessionFacts(
        session_type="coding", client_type="automation", repo_names=("acme/api",), run_id=RUN_ID
    ),
    "scratch": SessionFacts(session_type="coding", client_type="slack"),
}

# Secret shapes (kit.logs plus sandbox-provider.md §7) that no rendered file may contain.
SECRET_SHAPES = [
    re.compile(p)
    for p in (
        r"\bsk-ant-[A-Za-z0-9_-]{8,}",
        r"\bsk-[A-Za-z0-9_-]{16,}",
        r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{16,}",
        r"\bgh[pousr]_[A-Za-z0-9]{20,}",
        r"x-access-token:[^@\s]+@",
        r"\b(?:ak|as)-[A-Za-z0-9]{12,}",
        r"\be2b_[A-Za-z0-9]{16,}",
        r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        r"://[^/\s:@]+:[^/\s@]{8,}@",
    )
]


def manifest_input(mode: PromptMode, **overrides: object) -> ManifestInput:
    fields: dict[str, object] = {
        "mode": mode,
        "home_dir": "/home/user",
        "repo_dir": "/home/user/workspace",
        "prompt": render_system_prompt(mode, FACTS[mode], CAPS),
        "llm_base_url": "https://llm.example.test/v1/",
        "agent": AgentConfig(model_id="claude-sonnet-4.6"),
        "caps": CAPS,
        "trigger_context": b'{"event": "issue.created"}' if mode == "automation" else None,
    }
    fields.update(overrides)
    return ManifestInput(**fields)  # type: ignore[arg-type]


def check_golden(name: str, text: str) -> None:
    """Compare with tests/golden/<name>; `PROLIFERATE_UPDATE_GOLDEN=1` rewrites it (review the diff)."""
    path = GOLDEN / name
    if os.environ.get("PROLIFERATE_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"
