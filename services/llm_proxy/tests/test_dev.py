"""`make dev`: without a vendor key the scripted model answers every model; with one, vendors do."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from proliferate.devkit.infra import free_port
from proliferate.devkit.launcher import DevContext, DevState
from proliferate.devkit.platform import PlatformDatabase
from proliferate.llm_proxy import dev
from proliferate.llm_proxy.bootstrap import DEFINITION
from proliferate.llm_proxy.model_route.loader import load_catalog
from proliferate.llm_proxy.vendor import model_cost
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2 as pb

from .conftest import Proxy, eventually


def _context(tmp_path: Path) -> DevContext:
    return DevContext(
        dev_dir=tmp_path / ".dev",
        state=DevState(tmp_path / "secrets.json"),
        gateway_url="http://127.0.0.1:8080",
        grpc_addresses={},
        http_ports={"llm_proxy": free_port()},
    )


@pytest.fixture
def no_vendor_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in dev.VENDOR_KEYS:
        monkeypatch.delenv(name, raising=False)


async def test_without_a_vendor_key_every_model_is_served_by_the_scripted_model(
    no_vendor_keys: None, tmp_path: Path, service_runner: Any, platform_db: PlatformDatabase
) -> None:
    ctx = _context(tmp_path)
    env = dev.dev_environment(ctx)["llm_proxy"]
    catalog = load_catalog(Path(env["LLM_PROXY_MODELS_FILE"]), {}, model_cost())
    assert all(route.available for route in catalog.routes.values())
    [helper] = dev.dev_processes(ctx)
    line = (await dev.dev_after_start(ctx))[0]
    assert "no vendor key set" in line and "scripted model" in line

    scripted = subprocess.Popen(helper.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert helper.ready_url is not None
        await eventually(lambda: _answers(helper.ready_url), timeout=30)
        port = ctx.http_ports["llm_proxy"]
        running = await service_runner(DEFINITION, **env, LLM_PROXY_PORT=str(port))
        proxy = Proxy(
            f"http://127.0.0.1:{port}",
            f"127.0.0.1:{running.grpc_port}",
            platform_db.service_url("llm_proxy"),
            None,
            running,
        )  # type: ignore[arg-type]
        try:
            issued = await proxy.issue(uuid.uuid4())
            assert issued.anthropic_base_url == f"http://127.0.0.1:{port}/v1"
            tools = [{"name": "bash", "input_schema": {"type": "object"}}]
            body = {
                "model": "claude-sonnet-4-6",
                "max_tokens": 100,
                "tools": tools,
                "messages": [{"role": "user", "content": "hello"}],
            }
            reply = await proxy.message(issued.key, body)
            assert reply.status_code == 200, reply.text
            assert "scripted model" in reply.json()["content"][0]["text"]
            run = await proxy.chat(
                issued.key,
                {
                    "model": "gpt-5.2",
                    "tools": [{"type": "function", "function": {"name": "bash"}}],
                    "messages": [{"role": "user", "content": "run ls"}],
                },
            )
            assert run.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "bash"
            models = await proxy.rpc("ListModels", pb.ListModelsRequest())
            assert all(m.available for m in models.models)
        finally:
            await proxy.close()
    finally:
        scripted.terminate()
        scripted.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def test_with_a_vendor_key_the_shipped_routes_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-dev-test-000000")
    ctx = _context(tmp_path)
    env = dev.dev_environment(ctx)["llm_proxy"]
    assert "LLM_PROXY_MODELS_FILE" not in env
    assert env["LLM_PROXY_PUBLIC_URL"] == f"http://127.0.0.1:{ctx.http_ports['llm_proxy']}"
    assert dev.dev_processes(ctx) == []
    line = (await dev.dev_after_start(ctx))[0]
    assert "routing to the vendors (ANTHROPIC_API_KEY set" in line
