"""The git credential helper: `git-credential-proliferate get` answers from `git-credentials.json`.

Git is configured with `credential.helper=proliferate` (and `credential.useHttpPath=true` for per-repo
tokens), so tokens never appear in clone URLs, `.git/config` or argv. The file maps
`https://host/owner/repo`, `https://host` or `host` to `{"username", "password"}`; the most specific
match wins. `store` and `erase` are no-ops: the sandbox service owns the file.
"""

from __future__ import annotations

import json
import os
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


def lookup(creds: dict[str, Any], request: dict[str, str]) -> dict[str, str] | None:
    host = request.get("host", "").lower()
    if request.get("protocol", "https") != "https" and not os.environ.get("PROLIFERATE_ALLOW_INSECURE_GIT"):
        return None
    path = _norm(request.get("path", ""))
    candidates = []
    if path:
        candidates.append(f"https://{host}/{path}")
    candidates += [f"https://{host}", host]
    table = {}
    for key, value in creds.items():
        k = key.rstrip("/")
        if k.startswith(("https://", "http://")):
            rest = k.partition("://")[2]
            h, _, p = rest.partition("/")
            k = f"https://{h.lower()}" + (f"/{_norm(p)}" if p else "")
        else:
            k = k.lower()
        table[k] = value
    for candidate in candidates:
        entry = table.get(candidate)
        if isinstance(entry, dict) and isinstance(entry.get("password"), str):
            return {"username": str(entry.get("username") or "x-access-token"), "password": entry["password"]}
    return None


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
