"""Fixtures of the sandbox service's tests.

`service` starts the real service (gRPC only: the tests drive its jobs and consumers
themselves; real Postgres and NATS) with the Modal and E2B providers over their faithful SDK
fakes (`sandbox_fakes.py`). `e2b` is the default provider there because it boots without
processes: fast tests of the service's own rules. The local provider with real processes is
exercised by the conformance suite (`conformance/`).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from proliferate.devkit.pytest_plugin import TEST_SERVICE_AUTH_SECRET, register_canary
from proliferate.kit.db import Database
from proliferate.kit.rpc import ServiceClient, ServiceCredentials
from proliferate.kit.runtime import RunningService
from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from proliferate.protos.sandbox.v1 import sandbox_pb2_grpc
from proliferate.sandbox.bootstrap import definition
from proliferate.sandbox.context import SandboxContext

sys.path.insert(0, str(Path(__file__).parent))

from sandbox_fakes import FakeE2BPort, FakeModalPort

MODAL_ID = "ak-" + "a1b2c3d4e5f6a7b8c9d0"
MODAL_SECRET = "as-" + "z9y8x7w6v5u4t3s2r1q0"
E2B_KEY = "e2b_" + "0123456789abcdef0123"

FAST_ENV = {
    "DEFAULT_SANDBOX_PROVIDER": "e2b",
    "SANDBOX_ENABLED_PROVIDERS": "e2b,modal",
    "E2B_API_KEY": E2B_KEY,
    "MODAL_TOKEN_ID": MODAL_ID,
    "MODAL_TOKEN_SECRET": MODAL_SECRET,
    "SANDBOX_AGENT_READY_TIMEOUT_SECONDS": "0.3",
    "SANDBOX_REAPER_INTERVAL_SECONDS": "3600",
    "SANDBOX_METERING_INTERVAL_SECONDS": "3600",
    "SANDBOX_ORPHAN_SWEEP_INTERVAL_SECONDS": "3600",
    "SANDBOX_ARTIFACT_GC_INTERVAL_SECONDS": "3600",
    "SANDBOX_ALLOW_INSECURE_GIT_URLS": "true",
}


@dataclass
class Harness:
    running: RunningService[Any]
    client: ServiceClient
    ctx: SandboxContext
    e2b: FakeE2BPort
    modal: FakeModalPort
    db: Database

    @property
    def stub(self) -> sandbox_pb2_grpc.SandboxServiceStub:
        return self.client.stub(sandbox_pb2_grpc.SandboxServiceStub)

    async def call(self, method: str, request: Any, timeout: float = 60.0) -> Any:
        return await self.client.call(getattr(self.stub, method), request, timeout=timeout)


@dataclass
class Org:
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


def ensure_request(org: str, session: str | None = None, **overrides: Any) -> pb.EnsureSandboxRequest:
    """A typical boot request; secrets are registered as canaries (never in a log)."""
    token = register_canary("sbx-token-" + uuid.uuid4().hex)
    key = register_canary("sk-" + "virtualkey" + uuid.uuid4().hex)
    repo_token = register_canary("ghs_" + uuid.uuid4().hex + "AB")
    values: dict[str, Any] = {
        "organization_id": org,
        "session_id": session or str(uuid.uuid4()),
        "prompt_mode": "coding",
        "system_prompt": "You are a careful engineer.",
        "agent": pb.AgentConfig(model_id="gpt-5.2"),
        "repos": [
            pb.RepoSpec(
                repo_id="repo-1",
                clone_url="https://git.example.test/acme/app.git",
                token=repo_token,
                workspace_path="app",
            )
        ],
        "llm": pb.LlmAccess(base_url="http://127.0.0.1:9/v1", api_key=key),
        "sandbox_token": token,
        "git_identity": pb.GitIdentity(name="Ada", email="ada@example.test"),
        "env": {"APP_MODE": "test"},
    }
    values.update(overrides)
    return pb.EnsureSandboxRequest(**values)


@pytest_asyncio.fixture
async def service_factory(
    databases: Callable[[str], Database], service_runner: Callable[..., Any]
) -> AsyncIterator[Callable[..., Any]]:
    async def start(roles: tuple[str, ...] = ("grpc",), **env: str) -> Harness:
        e2b, modal = FakeE2BPort(), FakeModalPort()
        contexts: list[SandboxContext] = []
        running = await service_runner(
            definition(modal_port=modal, e2b_port=e2b, contexts=contexts), roles, **{**FAST_ENV, **env}
        )
        client = ServiceClient(
            "gateway",
            "sandbox",
            f"127.0.0.1:{running.grpc_port}",
            ServiceCredentials(TEST_SERVICE_AUTH_SECRET),
            default_timeout=60.0,
        )
        harness = Harness(running, client, contexts[0], e2b, modal, databases("sandbox"))
        started.append(harness)
        return harness

    started: list[Harness] = []
    yield start
    for harness in started:
        await harness.client.close()


@pytest_asyncio.fixture
async def service(service_factory: Callable[..., Any]) -> Harness:
    harness: Harness = await service_factory()
    return harness


@pytest.fixture
def org() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def org_second() -> str:
    return str(uuid.uuid4())
