"""Where things are in a checkout of the repository."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The checkout root: `PROLIFERATE_ROOT`, else the first parent holding `uv.lock` and `protos/`."""
    env = os.environ.get("PROLIFERATE_ROOT")
    if env:
        return Path(env).resolve()
    for start in (Path.cwd(), Path(__file__).resolve()):
        for parent in (start, *start.parents):
            if (parent / "uv.lock").exists() and (parent / "protos").is_dir():
                return parent
    raise RuntimeError("cannot find the repository root (set PROLIFERATE_ROOT)")


def dev_dir() -> Path:
    return Path(os.environ.get("PROLIFERATE_DEV_DIR") or repo_root() / ".dev").resolve()


def cache_dir() -> Path:
    return Path(os.environ.get("PROLIFERATE_CACHE_DIR") or repo_root() / ".cache").resolve()


def opencode_bin() -> Path:
    """The pinned OpenCode binary installed by `make opencode` (or `OPENCODE_BIN`)."""
    env = os.environ.get("OPENCODE_BIN")
    return Path(env) if env else cache_dir() / "opencode" / "node_modules" / ".bin" / "opencode"
