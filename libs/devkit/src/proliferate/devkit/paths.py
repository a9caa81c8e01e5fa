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


def opencode_base_dir(version: str) -> Path:
    """The agent's base layer installed by `make opencode-base` (or `OPENCODE_BASE_DIR`): its `node_modules/`
    holds the pinned `@opencode-ai/plugin` (`proliferate.agent_contract.OPENCODE_VERSION`) that every
    sandbox's `~/.config/opencode/` gets."""
    env = os.environ.get("OPENCODE_BASE_DIR")
    return Path(env) if env else cache_dir() / "opencode-base" / version


def esbuild_bin() -> Path:
    """The pinned esbuild from `make esbuild` (or `ESBUILD_BIN`), to check generated tool modules."""
    env = os.environ.get("ESBUILD_BIN")
    if env:
        return Path(env)
    found = sorted((cache_dir() / "esbuild").glob("*/node_modules/.bin/esbuild"))
    return found[-1] if found else cache_dir() / "esbuild" / "missing" / "esbuild"
