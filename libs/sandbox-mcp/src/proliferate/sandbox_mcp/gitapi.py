"""Git endpoints: repos, status (porcelain v2) and diff, with paths that cannot leave the workspace.

A repo id is the base64url of its path relative to `~/workspace`. Every path is resolved with symlinks
and must stay inside the workspace (and the repo), otherwise 400 — a symlink to `/etc` is refused,
not followed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from pathlib import Path
from typing import Any

from aiohttp import web
from proliferate.sandbox_mcp.auth import error_response
from proliferate.sandbox_mcp.runtime import Runtime

DIFF_CAP = 64 * 1024
GIT_TIMEOUT_S = 30.0
MAX_DEPTH = 3


class GitPathError(Exception):
    pass


def repo_id(rel: str) -> str:
    return base64.urlsafe_b64encode(rel.encode()).decode().rstrip("=")


def _decode_id(value: str) -> str:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise GitPathError("repo is not a valid repo id") from None


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def resolve_repo(rt: Runtime, rid: str | None) -> Path:
    workspace = rt.layout.workspace.resolve()
    if not rid:
        raise GitPathError("repo is required")
    rel = _decode_id(rid)
    if rel.startswith("/") or "\x00" in rel:
        raise GitPathError("repo must be relative to the workspace")
    repo = (workspace / rel).resolve()
    if not _inside(repo, workspace):
        raise GitPathError("repo leaves the workspace")
    if not (repo / ".git").exists():
        raise GitPathError("not a git repository")
    return repo


def resolve_in_repo(repo: Path, raw: str) -> str:
    """The repo-relative path of `raw`, after resolving symlinks; refused when it leaves the repo."""
    if not raw or "\x00" in raw or raw.startswith("-"):
        raise GitPathError("path is invalid")
    target = (repo / raw).resolve()
    if not _inside(target, repo) or _inside(target, repo / ".git"):
        raise GitPathError("path leaves the repository")
    return str(target.relative_to(repo)) if target != repo else "."


def find_repos(workspace: Path) -> list[Path]:
    found: list[Path] = []

    def walk(d: Path, depth: int) -> None:
        if (d / ".git").exists():
            found.append(d)
            return
        if depth >= MAX_DEPTH:
            return
        try:
            children = sorted(
                p for p in d.iterdir() if p.is_dir() and not p.is_symlink() and p.name != ".git"
            )
        except OSError:
            return
        for child in children:
            walk(child, depth + 1)

    if workspace.is_dir():
        walk(workspace, 0)
    return found


async def git(rt: Runtime, repo: Path, *args: str) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        "git",
        "-C",
        str(repo),
        "-c",
        "core.quotepath=off",
        *args,
        env=rt.child_env({"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 124, b"", b"git timed out"
    return proc.returncode or 0, out, err


def _parse_porcelain_v2(text: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    branch: dict[str, Any] = {}
    files: list[dict[str, str]] = []
    for line in text.split("\0"):
        if line.startswith("# branch."):
            key, _, value = line[len("# branch.") :].partition(" ")
            branch[key] = value
        elif line.startswith(("1 ", "2 ")):
            parts = line.split(" ", 8 if line[0] == "1" else 9)
            files.append({"status": parts[1], "path": parts[-1]})
        elif line.startswith("u "):
            files.append({"status": "UU", "path": line.split(" ", 10)[-1]})
        elif line.startswith("? "):
            files.append({"status": "??", "path": line[2:]})
    return branch, files


def create_git_routes(rt: Runtime) -> list[web.RouteDef]:
    def bad(exc: Exception) -> web.Response:
        return error_response(400, "invalid_path", str(exc))

    async def repos(request: web.Request) -> web.Response:
        workspace = rt.layout.workspace.resolve()
        out = []
        for repo in find_repos(workspace):
            rel = str(repo.relative_to(workspace)) if repo != workspace else "."
            code, head, _ = await git(rt, repo, "rev-parse", "--abbrev-ref", "HEAD")
            out.append(
                {"id": repo_id(rel), "path": rel, "branch": head.decode().strip() if code == 0 else None}
            )
        return web.json_response({"repos": out})

    async def status(request: web.Request) -> web.Response:
        try:
            repo = resolve_repo(rt, request.query.get("repo"))
        except GitPathError as exc:
            return bad(exc)
        code, out, err = await git(rt, repo, "status", "--porcelain=v2", "--branch", "-z")
        if code != 0:
            return error_response(500, "git_failed", err.decode(errors="replace")[:2000])
        text = out.decode(errors="replace")
        branch, files = _parse_porcelain_v2(text)
        return web.json_response(
            {"repo": request.query["repo"], "branch": branch, "files": files, "porcelain": text}
        )

    async def diff(request: web.Request) -> web.Response:
        try:
            repo = resolve_repo(rt, request.query.get("repo"))
            path = request.query.get("path")
            rel = resolve_in_repo(repo, path) if path else None
        except GitPathError as exc:
            return bad(exc)
        args = ["diff", "HEAD", "--no-color", "--no-ext-diff"]
        code, out, err = await git(rt, repo, *args, *(["--", rel] if rel else []))
        if code != 0:  # no commit yet: diff against the empty tree
            code, out, err = await git(
                rt, repo, "diff", "--no-color", "--cached", *(["--", rel] if rel else [])
            )
        if code != 0:
            return error_response(500, "git_failed", err.decode(errors="replace")[:2000])
        truncated = len(out) > DIFF_CAP
        text = out[:DIFF_CAP].decode(errors="replace")
        return web.json_response(
            {"repo": request.query["repo"], "path": rel, "diff": text, "truncated": truncated}
        )

    return [
        web.get("/api/git/repos", repos),
        web.get("/api/git/status", status),
        web.get("/api/git/diff", diff),
    ]
