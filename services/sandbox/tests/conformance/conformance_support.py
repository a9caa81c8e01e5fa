"""The provider conformance suite's fixtures (sandbox-provider.md §8.4): one suite, every provider.

`sbx` is parametrized over the providers: `local` in `process` isolation (every run), `local`
under bubblewrap where it works here (items C1-C21), and Modal and E2B live when their
credentials are set (skipped with that reason otherwise). Each test talks to the real sandbox
service over gRPC; repos come from bare repositories served over smart HTTP (`git http-backend`) that
demand the repo token, so a clone only works through the credential helper.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from proliferate.agent_contract import OPENCODE_VERSION
from proliferate.devkit.infra import free_port
from proliferate.devkit.paths import opencode_base_dir, opencode_bin
from proliferate.devkit.pytest_plugin import TEST_SERVICE_AUTH_SECRET, register_canary
from proliferate.kit.db import Database
from proliferate.kit.rpc import ServiceClient, ServiceCredentials
from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from proliferate.protos.sandbox.v1 import sandbox_pb2_grpc
from proliferate.sandbox.bootstrap import definition
from proliferate.sandbox.context import SandboxContext
from proliferate.sandbox.providers.local.isolation import _bwrap_works

REPO_TOKEN = register_canary("ghs_" + uuid.uuid4().hex + "CONF")
IDENTITY = ["-c", "user.email=t@e.test", "-c", "user.name=t"]
FAKE_AGENT = "python3 -m proliferate.sandbox.testing.fake_agent --port {port}"


# --- git over smart HTTP -------------------------------------------------------------------


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class GitServer:
    url: str
    root: Path
    requests: list[str] = field(default_factory=list)

    def clone_url(self, name: str) -> str:
        return f"{self.url}/acme/{name}.git"

    def commit(self, name: str, path: str, content: str) -> str:
        """Push a new commit to the bare repo `name` (what a teammate's push does)."""
        work = self.root / f"work-{name}-{uuid.uuid4().hex[:6]}"
        subprocess.run(["git", "clone", "-q", str(self.root / f"{name}.git"), str(work)], check=True)
        (work / path).write_text(content)
        subprocess.run(["git", "-C", str(work), "add", "."], check=True)
        subprocess.run(["git", "-C", str(work), *IDENTITY, "commit", "-qm", f"update {path}"], check=True)
        subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "HEAD:main"], check=True)
        out = subprocess.run(
            ["git", "-C", str(work), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        )
        shutil.rmtree(work)
        return out.stdout.strip()


def _make_repo(root: Path, name: str, files: dict[str, str], branches: Iterable[str] = ()) -> None:
    src = root / f"src-{name}"
    src.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(src)], check=True)
    for path, content in files.items():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_text(content)
    subprocess.run(["git", "-C", str(src), "add", "."], check=True)
    subprocess.run(["git", "-C", str(src), *IDENTITY, "commit", "-qm", "init"], check=True)
    for branch in branches:
        subprocess.run(["git", "-C", str(src), "branch", branch], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(root / f"{name}.git")], check=True)


def _http_backend(root: Path) -> Callable[..., Iterable[bytes]]:
    """git's own smart-HTTP server (`git http-backend`, CGI) as a WSGI app: real git on both
    ends, so shallow clones and later pulls negotiate exactly as against a hosting service."""
    backend = shutil.which("git-http-backend") or "/usr/lib/git-core/git-http-backend"

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        env = {
            "GIT_PROJECT_ROOT": str(root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": environ.get("PATH_INFO", "").removeprefix("/acme"),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": environ.get("HTTP_GIT_PROTOCOL", ""),
            "HTTP_CONTENT_ENCODING": environ.get("HTTP_CONTENT_ENCODING", ""),
        }
        out = subprocess.run([backend], input=body, env=env, capture_output=True, check=False).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = "200 OK"
        headers = []
        for line in head.decode(errors="replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = value.strip()
            elif key:
                headers.append((key, value.strip()))
        start_response(status, headers)
        return [payload]

    return app


@pytest.fixture(scope="session")
def git_server() -> Iterator[GitServer]:
    root = Path(tempfile.mkdtemp(prefix="conformance-git-"))
    _make_repo(root, "app", {"README.md": "app\n", "src/main.py": "print('app')\n"}, branches=("feature",))
    _make_repo(root, "lib", {"README.md": "lib\n"})
    _make_repo(root, "fresh", {"README.md": "v1\n"})
    expected = "Basic " + base64.b64encode(f"x-access-token:{REPO_TOKEN}".encode()).decode()
    app = _http_backend(root)
    server_state = GitServer("", root)

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        server_state.requests.append(environ.get("PATH_INFO", ""))
        if environ.get("HTTP_AUTHORIZATION") != expected:
            start_response(
                "401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Length", "0")]
            )
            return [b""]
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, guarded, server_class=ThreadingWSGIServer, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server_state.url = f"http://127.0.0.1:{server.server_port}"
    yield server_state
    server.shutdown()
    shutil.rmtree(root, ignore_errors=True)


# --- a gateway for tool callbacks ----------------------------------------------------------


@dataclass
class ToolGateway:
    """Answers `POST /v1/sessions/{id}/tools/{tool}`; `script` gives statuses per attempt."""

    script: list[int] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 0.0
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.seen.append(
            {"path": request.path, "auth": request.headers.get("Authorization", ""), "body": body}
        )
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        status = self.script.pop(0) if self.script else 200
        if status != 200:
            return web.json_response({"error": {"code": "unavailable"}}, status=status)
        return web.json_response(
            {"success": True, "result": f"tool ok #{len(self.seen)}", "data": None, "error": None}
        )


@pytest_asyncio.fixture
async def tool_gateway() -> AsyncIterator[ToolGateway]:
    gateway = ToolGateway()
    app = web.Application()
    app.router.add_post("/v1/sessions/{sid}/tools/{tool}", gateway.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    gateway.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield gateway
    await runner.cleanup()


# --- the service under test ----------------------------------------------------------------


def _bwrap_available() -> bool:
    return shutil.which("bwrap") is not None and _bwrap_works(
        shutil.which("bwrap") or "bwrap", 1000 if os.geteuid() == 0 else None
    )


CASES = ["local-process", "local-bwrap", "modal", "e2b"]
PROCESS_CASES = ["local-process", "modal", "e2b"]


def _skip_reason(case: str) -> str | None:
    if case == "local-bwrap" and not _bwrap_available():
        return "bubblewrap is not installed or does not work on this machine"
    if case == "modal" and not (os.environ.get("MODAL_TOKEN_ID") and os.environ.get("MODAL_TOKEN_SECRET")):
        return "live Modal conformance needs MODAL_TOKEN_ID/MODAL_TOKEN_SECRET"
    if case == "e2b" and not os.environ.get("E2B_API_KEY"):
        return "live E2B conformance needs E2B_API_KEY"
    if case in ("modal", "e2b") and not os.environ.get("SANDBOX_CONFORMANCE_REPO_URL"):
        return (
            f"live {case} conformance needs SANDBOX_CONFORMANCE_REPO_URL (a repo reachable from the provider)"
        )
    return None


def _port_range() -> str:
    """50 blocks per test process, below the kernel's ephemeral range (32768+): no outgoing
    connection or `free_port()` of a parallel test can take a block's port between the
    allocation and the supervisor's bind. (Production: reserve the range with
    net.ipv4.ip_local_reserved_ports.)"""
    low = 22000 + (os.getpid() % 25) * 400
    return f"{low}-{low + 399}"


def case_env(case: str, root: Path) -> dict[str, str]:
    if case.startswith("local"):
        env = {
            "DEFAULT_SANDBOX_PROVIDER": "local",
            "SANDBOX_ENABLED_PROVIDERS": "local",
            "SANDBOX_LOCAL_ROOT": str(root),
            "SANDBOX_LOCAL_ISOLATION": case.split("-")[1],
            "SANDBOX_LOCAL_ALLOW_UNISOLATED": "true",
            "SANDBOX_LOCAL_PORT_RANGE": _port_range(),
            "SANDBOX_LOCAL_AGENT_COMMAND": FAKE_AGENT,
            "SANDBOX_ALLOW_INSECURE_GIT_URLS": "true",
            "OPENCODE_BIN": str(opencode_bin()),
            "SANDBOX_LOCAL_PLUGIN_DIR": str(opencode_base_dir(OPENCODE_VERSION)),
        }
        return env
    keys = (
        "MODAL_TOKEN_ID",
        "MODAL_TOKEN_SECRET",
        "E2B_API_KEY",
        "E2B_DOMAIN",
        "E2B_TEMPLATE",
        "SANDBOX_IMAGE_REF",
    )
    return {
        "DEFAULT_SANDBOX_PROVIDER": case,
        "SANDBOX_ENABLED_PROVIDERS": case,
        **{k: os.environ[k] for k in keys if os.environ.get(k)},
        "SANDBOX_LOCAL_AGENT_COMMAND": "",
    }


@dataclass
class Conformance:
    case: str
    client: ServiceClient
    ctx: SandboxContext
    db: Database
    git: GitServer
    root: Path
    org: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def local(self) -> bool:
        return self.case.startswith("local")

    @property
    def provider(self) -> Any:
        return self.ctx.providers.get(self.ctx.providers.default)

    async def call(self, method: str, request: Any, timeout: float = 180.0) -> Any:
        stub = self.client.stub(sandbox_pb2_grpc.SandboxServiceStub)
        return await self.client.call(getattr(stub, method), request, timeout=timeout)

    def repo(
        self, name: str = "app", workspace_path: str = "app", branch: str = "", token: str = REPO_TOKEN
    ) -> pb.RepoSpec:
        url = (
            os.environ.get("SANDBOX_CONFORMANCE_REPO_URL", "") if not self.local else self.git.clone_url(name)
        )
        return pb.RepoSpec(
            repo_id=f"repo-{name}", clone_url=url, token=token, workspace_path=workspace_path, branch=branch
        )

    def request(
        self, *, session: str | None = None, repos: list[pb.RepoSpec] | None = None, **overrides: Any
    ) -> pb.EnsureSandboxRequest:
        token = overrides.pop("sandbox_token", None) or register_canary("sbx-" + uuid.uuid4().hex)
        values: dict[str, Any] = {
            "organization_id": self.org,
            "session_id": session or str(uuid.uuid4()),
            "prompt_mode": "coding",
            "system_prompt": "Work carefully.",
            "agent": pb.AgentConfig(model_id="claude-sonnet-4.6"),
            "repos": [self.repo()] if repos is None else repos,
            "llm": pb.LlmAccess(
                base_url="http://127.0.0.1:9/v1", api_key=register_canary("sk-conf-" + uuid.uuid4().hex)
            ),
            "sandbox_token": token,
            "env": {"APP_MODE": "conformance"},
        }
        values.update(overrides)
        return pb.EnsureSandboxRequest(**values)

    async def ensure(self, **kw: Any) -> pb.EnsureSandboxResponse:
        reply: pb.EnsureSandboxResponse = await self.call("EnsureSandbox", self.request(**kw))
        return reply

    async def exec(
        self, sandbox_id: str, *argv: str, cwd: str = "", timeout: int = 30, **env: str
    ) -> pb.ExecCommandResponse:
        request = pb.ExecCommandRequest(
            organization_id=self.org,
            sandbox_id=sandbox_id,
            argv=list(argv),
            cwd=cwd,
            env=env,
            timeout_seconds=timeout,
        )
        reply: pb.ExecCommandResponse = await self.call("ExecCommand", request)
        return reply

    async def capture(self, sandbox_id: str, **kw: Any) -> pb.CaptureSnapshotResponse:
        reply: pb.CaptureSnapshotResponse = await self.call(
            "CaptureSnapshot",
            pb.CaptureSnapshotRequest(organization_id=self.org, sandbox_id=sandbox_id, **kw),
        )
        return reply

    async def terminate(self, sandbox_id: str) -> pb.TerminateSandboxResponse:
        reply: pb.TerminateSandboxResponse = await self.call(
            "TerminateSandbox", pb.TerminateSandboxRequest(organization_id=self.org, sandbox_id=sandbox_id)
        )
        return reply

    async def get(self, sandbox_id: str) -> pb.Sandbox:
        reply: pb.Sandbox = await self.call(
            "GetSandbox", pb.GetSandboxRequest(organization_id=self.org, sandbox_id=sandbox_id)
        )
        return reply

    async def read(self, sandbox_id: str, path: str) -> str:
        out = await self.exec(sandbox_id, "cat", path)
        assert out.exit_code == 0, out.stderr
        return out.stdout

    async def http(
        self, sb: pb.Sandbox, method: str, path: str, token: str | None, **kw: Any
    ) -> httpx.Response:
        headers = {**kw.pop("headers", {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.request(method, sb.preview_url + path, headers=headers, **kw)

    def home(self, reply: pb.EnsureSandboxResponse | pb.Sandbox) -> str:
        sandbox = reply.sandbox if isinstance(reply, pb.EnsureSandboxResponse) else reply
        if self.case == "local-process":
            return str(self.root / "sandboxes" / sandbox.id / "home")
        return "/home/user"


@pytest_asyncio.fixture
async def conformance_factory(
    databases: Callable[[str], Database], service_runner: Callable[..., Any], git_server: GitServer
) -> AsyncIterator[Callable[..., Any]]:
    made: list[Conformance] = []

    async def make(case: str, root: Path | None = None, **env: str) -> Conformance:
        root = root or Path(tempfile.mkdtemp(prefix="sbx-conf-", dir="/tmp"))
        root.chmod(0o755)
        contexts: list[SandboxContext] = []
        running = await service_runner(
            definition(contexts=contexts),
            ("grpc",),
            **{
                **case_env(case, root),
                "SANDBOX_AGENT_READY_TIMEOUT_SECONDS": "30",
                "SANDBOX_CALLBACK_BASE_URL": env.pop("SANDBOX_CALLBACK_BASE_URL", "http://127.0.0.1:9"),
                **env,
            },
        )
        client = ServiceClient(
            "gateway",
            "sandbox",
            f"127.0.0.1:{running.grpc_port}",
            ServiceCredentials(TEST_SERVICE_AUTH_SECRET),
            default_timeout=180,
        )
        conf = Conformance(case, client, contexts[0], databases("sandbox"), git_server, root)
        made.append(conf)
        return conf

    yield make
    for conf in made:
        await conf.client.close()
        if conf.local:
            for entry in (conf.root / "sandboxes").glob("*"):
                await conf.provider.terminate(conf.provider.handle(_ref(entry.name)))
            shutil.rmtree(conf.root, ignore_errors=True)


def _ref(sandbox_id: str) -> Any:
    from proliferate.sandbox.providers.base import SandboxRef

    return SandboxRef(sandbox_id, sandbox_id)


@pytest_asyncio.fixture(params=CASES)
async def sbx(request: pytest.FixtureRequest, conformance_factory: Callable[..., Any]) -> Conformance:
    reason = _skip_reason(request.param)
    if reason:
        pytest.skip(reason=reason)
    conf: Conformance = await conformance_factory(request.param)
    return conf


@pytest_asyncio.fixture(params=PROCESS_CASES)
async def sbx_process(request: pytest.FixtureRequest, conformance_factory: Callable[..., Any]) -> Conformance:
    """Items C22-C32: `local` in process isolation and the live providers."""
    reason = _skip_reason(request.param)
    if reason:
        pytest.skip(reason=reason)
    conf: Conformance = await conformance_factory(request.param)
    return conf


async def until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


def free_ports() -> int:
    return free_port()


__all__ = ["REPO_TOKEN", "Conformance", "GitServer", "ToolGateway", "json", "until"]
