"""The git credential helper: lookup rules, and a real authenticated clone through the sandbox's exec."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

import pytest
from dulwich.repo import Repo
from dulwich.server import DictBackend
from dulwich.web import make_server, make_wsgi_chain
from proliferate.devkit.pytest_plugin import register_canary
from proliferate.sandbox_mcp.credential_helper import lookup, main

from .conftest import Sandbox

REPO_TOKEN = register_canary("ghs_" + "r" * 36)


def ask(creds: dict[str, Any], **request: str) -> dict[str, str] | None:
    return lookup(creds, request)


class TestLookup:
    CREDS = {
        "https://github.com/acme/api": {"username": "x-access-token", "password": "repo-token"},
        "https://github.com": {"username": "x-access-token", "password": "host-token"},
        "gitlab.example.com": {"username": "oauth2", "password": "bare-token"},
        "http://127.0.0.1:9418/local": {"username": "u", "password": "insecure-ok"},
    }

    def test_most_specific_entry_wins(self) -> None:
        assert (
            ask(self.CREDS, protocol="https", host="github.com", path="acme/api.git")["password"]
            == "repo-token"
        )  # type: ignore[index]
        assert (
            ask(self.CREDS, protocol="https", host="GitHub.com", path="acme/other")["password"]
            == "host-token"
        )  # type: ignore[index]
        assert (
            ask(self.CREDS, protocol="https", host="gitlab.example.com", path="g/p")["username"] == "oauth2"
        )  # type: ignore[index]

    def test_plain_http_only_with_an_http_entry(self) -> None:
        assert ask(self.CREDS, protocol="http", host="github.com", path="acme/api") is None
        assert ask(self.CREDS, protocol="http", host="gitlab.example.com", path="g/p") is None
        assert (
            ask(self.CREDS, protocol="http", host="127.0.0.1:9418", path="local")["password"] == "insecure-ok"
        )  # type: ignore[index]

    def test_unknown_host_or_protocol(self) -> None:
        assert ask(self.CREDS, protocol="https", host="evil.example") is None
        assert ask(self.CREDS, protocol="ssh", host="github.com") is None

    def test_main_get_store_erase(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        path = tmp_path / "git-credentials.json"
        path.write_text(json.dumps(self.CREDS))
        monkeypatch.setenv("PROLIFERATE_GIT_CREDENTIALS", str(path))
        out = io.StringIO()
        main(["get"], io.StringIO("protocol=https\nhost=github.com\npath=acme/api\n\n"), out)
        assert out.getvalue() == "username=x-access-token\npassword=repo-token\n"
        for verb in ("store", "erase"):
            out = io.StringIO()
            main([verb], io.StringIO("protocol=https\nhost=github.com\npassword=x\n\n"), out)
            assert out.getvalue() == ""
        assert json.loads(path.read_text()) == self.CREDS
        path.unlink()
        out = io.StringIO()
        assert (
            main(["get"], io.StringIO("protocol=https\nhost=github.com\n\n"), out) == 0
            and out.getvalue() == ""
        )


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _require_basic(
    app: Callable[..., Iterable[bytes]], user: str, password: str
) -> Callable[..., Iterable[bytes]]:
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_AUTHORIZATION") != expected:
            start_response(
                "401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Length", "0")]
            )
            return [b""]
        return app(environ, start_response)

    return guarded


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[str]:
    """A bare repo over smart HTTP that demands `x-access-token:<REPO_TOKEN>`."""
    src = tmp_path / "src"
    src.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(src)], check=True)
    (src / "README.md").write_text("hello from the remote\n")
    subprocess.run(["git", "-C", str(src), "add", "."], check=True)
    identity = ["-c", "user.email=t@e.test", "-c", "user.name=t"]
    subprocess.run(["git", "-C", str(src), *identity, "commit", "-qm", "init"], check=True)
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(bare)], check=True)
    app = _require_basic(
        make_wsgi_chain(DictBackend({"/acme/api.git": Repo(str(bare))})), "x-access-token", REPO_TOKEN
    )
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


class TestCloneThroughTheSandbox:
    async def test_clone_uses_the_helper_and_keeps_the_token_out_of_git_config(
        self, sandbox: Sandbox, git_server: str
    ) -> None:
        creds = sandbox.tmp / "proliferate" / "git-credentials.json"
        creds.write_text(
            json.dumps({f"{git_server}/acme/api": {"username": "x-access-token", "password": REPO_TOKEN}})
        )
        creds.chmod(0o600)
        out = await sandbox.exec(
            ["git", "clone", "-q", f"{git_server}/acme/api.git", "workspace/api"], timeout_s=60
        )
        assert out["exit_code"] == 0, out["stderr"]
        repo = sandbox.home / "workspace" / "api"
        assert (repo / "README.md").read_text() == "hello from the remote\n"
        config = (repo / ".git" / "config").read_text()
        assert REPO_TOKEN not in config and "x-access-token" not in config
        assert REPO_TOKEN not in out["stderr"] + out["stdout"]
        assert not (sandbox.home / ".gitconfig").exists(), "no credential setting is written into the home"
        # Later git commands (the agent's pull) authenticate the same way.
        pulled = await sandbox.exec(["git", "-C", "workspace/api", "pull", "-q", "--ff-only"], timeout_s=60)
        assert pulled["exit_code"] == 0, pulled["stderr"]

    async def test_without_credentials_git_fails_instead_of_prompting(
        self, sandbox: Sandbox, git_server: str
    ) -> None:
        out = await sandbox.exec(
            ["git", "clone", "-q", f"{git_server}/acme/api.git", "workspace/x"], timeout_s=60
        )
        assert out["exit_code"] != 0 and out["exit_code"] != 124
