"""`session.env`: one `KEY=<shlex-quoted value>` per line (CONTRACT.md), secrets included.

The supervisor reads it into a dict; nothing here ever logs a value.
"""

from __future__ import annotations

import shlex
from pathlib import Path

TOKEN_KEY = "SANDBOX_MCP_AUTH_TOKEN"  # noqa: S105 - the name of the variable, not a value


def parse_env(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for token in shlex.split(text, comments=True, posix=True):
        key, sep, value = token.partition("=")
        if sep and key.replace("_", "a").isalnum() and not key[0].isdigit():
            env[key] = value
    return env


def format_env(env: dict[str, str]) -> str:
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(env.items()))


def read_env_file(path: Path) -> tuple[bytes, dict[str, str]] | None:
    """The raw bytes (to detect changes) and parsed env, or None when the file is absent."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    return raw, parse_env(raw.decode("utf-8", errors="replace"))
