"""The llm_proxy under test: the real service (in-process or as a process) in front of a scripted model.

Prices in the test models file are round so costs are exact: 1 µUSD per input token,
2 µUSD per output token, 0.1 µUSD per cache read, 1.25 µUSD per cache write.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio
from google.protobuf.message import Message
from nats.aio.client import Client as NatsClient
from proliferate.devkit.infra import free_port
from proliferate.devkit.platform import PlatformDatabase
from proliferate.devkit.pytest_plugin import (
    TEST_SERVICE_AUTH_SECRET,
    Infra,
    register_canary,
    register_log_file,
    service_env,
    truncate_all,
)
from proliferate.kit.db import libpq_url
from proliferate.kit.rpc import ServiceClient, ServiceCredentials
from proliferate.kit.runtime import RunningService
from proliferate.llm_proxy.bootstrap import DEFINITION
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2 as pb
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2_grpc
from proliferate.scripted_model import ScriptedModel

VENDOR_KEY = "sk-vendor-test-key-4f1c0d9e7b2a"
UNSET_KEY_VARIABLE = "PROLIFERATE_TEST_UNSET_VENDOR_KEY"
PRICES = (
    "model_info: {input_cost_per_token: 0.000001, output_cost_per_token: 0.000002,"
    " cache_read_input_token_cost: 0.0000001, cache_creation_input_token_cost: 0.00000125}"
)


def cost_of(prompt: int = 0, completion: int = 0, cache_read: int = 0, cache_write: int = 0) -> int:
    """Micro-USD at the test prices, rounded half up like the proxy."""
    exact = prompt * 1 + completion * 2 + cache_read * 0.1 + cache_write * 1.25
    return int(exact + 0.5)


def models_yaml(scripted: ScriptedModel, *, retry_after: float = 0.01) -> str:
    base, v1 = scripted.url, scripted.openai_base_url
    return f"""
model_list:
  - model_name: scripted-gpt
    aliases: [gpt-scripted]
    litellm_params:
      {{model: openai/scripted-gpt-upstream, api_base: "{v1}", api_key: os.environ/OPENAI_API_KEY}}
    {PRICES}
  - model_name: scripted-claude
    aliases: [claude-scripted]
    litellm_params:
      {{model: anthropic/claude-scripted-upstream, api_base: "{base}", api_key: os.environ/ANTHROPIC_API_KEY}}
    {PRICES}
  - model_name: flaky
    litellm_params: {{model: openai/flaky-upstream, api_base: "{v1}", api_key: os.environ/OPENAI_API_KEY}}
    {PRICES}
  - model_name: steady
    litellm_params: {{model: openai/steady-upstream, api_base: "{v1}", api_key: os.environ/OPENAI_API_KEY}}
    {PRICES}
  - model_name: unconfigured
    litellm_params: {{model: openai/nowhere, api_base: "{v1}", api_key: os.environ/{UNSET_KEY_VARIABLE}}}
    {PRICES}
router_settings:
  fallbacks:
    - flaky: [steady]
  num_retries: 2
  retry_after: {retry_after}
  timeout: 30
"""


def write_models_file(tmp_path: Path, scripted: ScriptedModel) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(models_yaml(scripted))
    return path


def proxy_env(models_file: Path, port: int, **overrides: str) -> dict[str, str]:
    return {
        "LLM_PROXY_MODELS_FILE": str(models_file),
        "LLM_PROXY_PORT": str(port),
        "OPENAI_API_KEY": VENDOR_KEY,
        "ANTHROPIC_API_KEY": VENDOR_KEY,
        # Jobs are driven by the tests themselves.
        "LLM_PROXY_SWEEP_INTERVAL_S": "3600",
        **overrides,
    }


@dataclass
class Proxy:
    """A running llm_proxy and the ways a test talks to it."""

    url: str
    grpc_address: str
    db_url: str
    scripted: ScriptedModel
    running: RunningService[Any] | None = None
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=60))
    _clients: dict[str, ServiceClient] = field(default_factory=dict)

    def client(self, caller: str = "gateway") -> ServiceClient:
        if caller not in self._clients:
            credentials = ServiceCredentials(TEST_SERVICE_AUTH_SECRET)
            self._clients[caller] = ServiceClient(caller, "llm_proxy", self.grpc_address, credentials)
        return self._clients[caller]

    async def rpc(self, method: str, request: Message, caller: str = "gateway") -> Any:
        client = self.client(caller)
        stub = client.stub(llm_proxy_pb2_grpc.LlmProxyServiceStub)
        return await client.call(getattr(stub, method), request)

    async def issue(
        self,
        organization_id: uuid.UUID | None = None,
        session_id: uuid.UUID | None = None,
        **fields: Any,
    ) -> pb.IssuedVirtualKey:
        request = pb.IssueVirtualKeyRequest(
            organization_id=str(organization_id or uuid.uuid4()),
            scope=fields.pop("scope", pb.KEY_SCOPE_SESSION),
            **fields,
        )
        if request.scope == pb.KEY_SCOPE_SESSION and not request.HasField("session_id"):
            request.session_id = str(session_id or uuid.uuid4())
        issued: pb.IssuedVirtualKey = await self.rpc("IssueVirtualKey", request)
        register_canary(issued.key)
        return issued

    async def chat(self, key: str, body: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
        payload = body or {"model": "scripted-gpt", "messages": [{"role": "user", "content": "hi"}]}
        return await self.http.post(
            f"{self.url}/v1/chat/completions",
            json=payload,
            headers={"authorization": f"Bearer {key}", **headers},
        )

    async def message(self, key: str, body: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
        payload = body or {
            "model": "scripted-claude",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "hi"}],
        }
        return await self.http.post(
            f"{self.url}/v1/messages", json=payload, headers={"x-api-key": key, **headers}
        )

    # --- the database, read as the llm_proxy role ---------------------------------------

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with psycopg.connect(libpq_url(self.db_url), autocommit=True) as conn:
            conn.execute("SET search_path = llm_proxy")
            cursor = conn.execute(sql, params)
            if cursor.description is None:
                return []
            names = [c.name for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def records(self, **where: Any) -> list[dict[str, Any]]:
        clause = " AND ".join(f"{k} = %s" for k in where) or "true"
        return self.query(f"SELECT * FROM spend_records WHERE {clause} ORDER BY started_at", *where.values())

    def events(self, subject: str) -> list[bytes]:
        rows = self.query("SELECT payload FROM outbox WHERE subject = %s ORDER BY created_at", subject)
        return [bytes(r["payload"]) for r in rows]

    async def wait_records(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 15, **where: Any
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.records(**where)
            if predicate(rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"spend records never matched: {rows}")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.http.aclose()
        for client in self._clients.values():
            await client.close()


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `check` (sync or async) until it returns a truthy value; the value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(interval)


@pytest_asyncio.fixture
async def proxy(
    service_runner: Any, platform_db: PlatformDatabase, scripted_model: ScriptedModel, tmp_path: Path
) -> AsyncIterator[Proxy]:
    """llm_proxy in-process (the bootstrap `make dev` uses), routed to this test's scripted model."""
    port = free_port()
    models = write_models_file(tmp_path, scripted_model)
    running = await service_runner(DEFINITION, **proxy_env(models, port))
    proxy = Proxy(
        url=f"http://127.0.0.1:{port}",
        grpc_address=f"127.0.0.1:{running.grpc_port}",
        db_url=platform_db.service_url("llm_proxy"),
        scripted=scripted_model,
        running=running,
    )
    yield proxy
    await proxy.close()


@dataclass
class ProxyProcess:
    """llm_proxy as its own process (`python -m proliferate.llm_proxy`), for SIGTERM and kill -9."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ProxyProcess:
        register_log_file(self.log_path)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "proliferate.llm_proxy"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    async def wait_ready(self, url: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(f"llm_proxy exited with {self.process.returncode}:\n{self.tail()}")
                try:
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"llm_proxy not ready after {timeout}s:\n{self.tail()}")

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def records(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait(10)


@pytest.fixture
def proxy_process(
    platform_db: PlatformDatabase,
    infra: Infra,
    tmp_path: Path,
    scripted_model: ScriptedModel,
    nats_client: NatsClient,
) -> Iterator[Callable[..., tuple[Proxy, ProxyProcess]]]:
    made: list[tuple[Proxy, ProxyProcess]] = []

    def make(**overrides: str) -> tuple[Proxy, ProxyProcess]:
        port, grpc_port = free_port(), free_port()
        models = write_models_file(tmp_path, scripted_model)
        env = {
            **os.environ,
            **service_env(
                platform_db,
                infra,
                "llm_proxy",
                GRPC_PORT=str(grpc_port),
                **proxy_env(models, port, **overrides),
            ),
            "PYTHONUNBUFFERED": "1",
        }
        process = ProxyProcess(env, tmp_path / f"llm_proxy-{len(made)}.log")
        proxy = Proxy(
            url=f"http://127.0.0.1:{port}",
            grpc_address=f"127.0.0.1:{grpc_port}",
            db_url=platform_db.service_url("llm_proxy"),
            scripted=scripted_model,
        )
        made.append((proxy, process))
        return proxy, process

    yield make
    for _, process in made:
        process.kill()
    truncate_all(platform_db)


async def publish(
    nats_client: NatsClient, subject: str, message: Message, event_id: uuid.UUID | None = None
) -> uuid.UUID:
    """Publish a consumed event the way its owner's relay does (Nats-Msg-Id = event id)."""
    eid = event_id or uuid.uuid4()
    await nats_client.jetstream().publish(
        subject,
        message.SerializeToString(),
        headers={"Nats-Msg-Id": str(eid), "Proliferate-Event-Type": message.DESCRIPTOR.full_name},
    )
    return eid


def pytest_configure(config: pytest.Config) -> None:
    # litellm's pydantic models warn about typing qualifiers on first use; nothing to act on.
    config.addinivalue_line("filterwarnings", "ignore:Items? .* using the `ReadOnly` qualifier:UserWarning")
