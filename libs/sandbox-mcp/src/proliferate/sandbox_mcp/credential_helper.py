"""The git credential helper: `git-credential-proliferate get` answers from `git-credentials.json`.

Every process the supervisor starts gets `git_config_env()` (the helper, `credential.useHttpPath=true`,
no prompts), so tokens never appear in clone URLs, `.git/config` or argv. The file maps
`https://host/owner/repo`, `https://host` or `host` to `{"username", "password"}`; the most specific
match wins. `store` and `erase` are no-ops: the sandbox service owns the file.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, TextIO


def credentials_path() -> Path:
    explicit = os.environ.get("PROLIFERATE_GIT_CREDENTIALS")
    if explicit:
        return Path(explicit)
    tmp = os.environ.get("PROLIFERATE_TMP") or os.environ.get("TMPDIR") or "/tmp"  # noqa: S108
    return Path(tmp) / "proliferate" / "git-credentials.json"


def parse_request(stream: TextIO) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in stream:
        line = line.rstrip("\n")
        if not line:
            break
        key, sep, value = line.partition("=")
        if sep:
            fields[key] = value
    return fields


def _norm(path: str) -> str:
    path = path.strip("/")
    return path[: -len(".git")] if path.endswith(".git") else path


def _key(raw: str) -> str:
    """`scheme://host[/path]` lower-cased host, no `.git`, no trailing `/`; a bare host stays bare."""
    raw = raw.strip().rstrip("/")
    if "://" not in raw:
        return raw.lower()
    scheme, _, rest = raw.partition("://")
    host, _, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}" + (f"/{_norm(path)}" if path else "")


def lookup(creds: dict[str, Any], request: dict[str, str]) -> dict[str, str] | None:
    """The most specific entry for the request: repo URL, then host URL, then (https only) bare host.

    A plain `http://` remote gets credentials only from an entry spelled with `http://`, which the
    sandbox service writes only when insecure git URLs are allowed.
    """
    protocol, host = request.get("protocol", "").lower(), request.get("host", "").lower()
    if protocol not in ("https", "http") or not host:
        return None
    path = _norm(request.get("path", ""))
    candidates = ([f"{protocol}://{host}/{path}"] if path else []) + [f"{protocol}://{host}"]
    if protocol == "https":
        candidates.append(host)
    table = {_key(k): v for k, v in creds.items() if isinstance(k, str)}
    for candidate in candidates:
        entry = table.get(candidate)
        if isinstance(entry, dict) and isinstance(entry.get("password"), str):
            return {"username": str(entry.get("username") or "x-access-token"), "password": entry["password"]}
    return None


def git_config_env() -> dict[str, str]:
    """Env that makes every git in the sandbox use this helper, with per-repo paths and no prompts.

    Carried by everything the supervisor starts (exec, agent, services, terminal); no file is written,
    so the user's `~/.gitconfig` stays theirs and no credential setting lands in a snapshot.
    """
    helper = f"!{shlex.quote(sys.executable)} -m proliferate.sandbox_mcp.credential_helper"
    pairs = [("credential.helper", ""), ("credential.helper", helper), ("credential.useHttpPath", "true")]
    env = {"GIT_CONFIG_COUNT": str(len(pairs)), "GIT_TERMINAL_PROMPT": "0"}
    for i, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def main(argv: list[str] | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "get":
        return 0  # store / erase: the sandbox service owns the credentials file
    request = parse_request(stdin)
    try:
        creds = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return 0  # nothing to offer: git falls through (and fails without a prompt)
    found = lookup(creds, request) if isinstance(creds, dict) else None
    if found is not None:
        stdout.write(f"username={found['username']}\npassword={found['password']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
