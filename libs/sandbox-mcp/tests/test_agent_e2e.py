"""End to end: the supervisor on a temp home (process isolation) runs the real OpenCode, configured by
the agent-contract manifest and pointed at the scripted model, and everything goes through the router
with the sandbox token: a prompt answered, OpenCode's `bash` running inside the sandbox with its output
in the agent's events, a platform tool calling the gateway, the agent restarted after a kill, and a
rotated token taking effect. One OpenCode process serves the whole module."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from proliferate.agent_contract import (
    OPENCODE_VERSION,
    AgentConfig,
    Capabilities,
    ManifestInput,
    SessionFacts,
    build_manifest,
    render_system_prompt,
)
from proliferate.devkit.paths import opencode_base_dir, opencode_bin
from proliferate.devkit.pytest_plugin import register_canary
from proliferate.scripted_model import Match, ScriptedModel, ToolCall, Turn, agent_turns
from proliferate.scripted_model.opencode import text_of, tool_parts

from .conftest import Sandbox, until
from .fake_gateway import FakeGateway, fake_gateway

pytestmark = pytest.mark.slow

VIRTUAL_KEY = register_canary("sk-proxy-virtual-" + uuid.uuid4().hex)
SESSION_ID = str(uuid.uuid4())


def _missing() -> str | None:
    if not opencode_bin().exists():
        return f"OpenCode is not installed at {opencode_bin()}: run `make opencode`"
    if not (opencode_base_dir(OPENCODE_VERSION) / "node_modules").exists():
        return "the agent base layer is missing: run `make opencode-base`"
    return None


class AgentBox:
    def __init__(self, box: Sandbox, model: ScriptedModel, gateway: FakeGateway) -> None:
        self.box, self.model, self.gateway = box, model, gateway
        self.events: list[dict[str, Any]] = []

    def session_env(self, token: str) -> dict[str, str]:
        return {
            "PROLIFERATE_GATEWAY_URL": f"http://127.0.0.1:{self.gateway.port}",
            "PROLIFERATE_SESSION_ID": SESSION_ID,
            "PROLIFERATE_CONTRACT_VERSION": "1",
            "SESSION_ID": SESSION_ID,
            "WORKSPACE_DIR": str(self.box.home / "workspace"),
            "ANTHROPIC_API_KEY": VIRTUAL_KEY,
            "ANTHROPIC_BASE_URL": self.model.url,
            "OPENCODE_DISABLE_DEFAULT_PLUGINS": "true",
        }

    async def agent(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        async with httpx.AsyncClient(timeout=180) as client:
            return await client.request(
                method, f"{self.box.router_url}/_proliferate/agent{path}", headers=self.box.auth(token), **kw
            )

    async def follow_events(self) -> None:
        """The agent's SSE stream, read through the router for the whole module."""
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client,
            client.stream(
                "GET", f"{self.box.router_url}/_proliferate/agent/event", headers=self.box.auth()
            ) as res,
        ):
            async for line in res.aiter_lines():
                if line.startswith("data: "):
                    with contextlib.suppress(ValueError):
                        self.events.append(json.loads(line[len("data: ") :]))


def write_home(box: Sandbox, env: dict[str, str]) -> None:
    """What the boot pipeline writes: manifest files, the base layer's node_modules, supervisor.json,
    and session.env last."""
    workspace = box.home / "workspace"
    subprocess.run(["git", "init", "-q", "-b", "main", str(workspace)], check=True)
    facts = SessionFacts(session_type="coding", client_type="web", repo_names=("acme/demo",))
    manifest = build_manifest(
        ManifestInput(
            mode="coding",
            home_dir=str(box.home),
            repo_dir=str(workspace),
            prompt=render_system_prompt("coding", facts, Capabilities()),
            llm_base_url=env["ANTHROPIC_BASE_URL"],
            agent=AgentConfig(model_id="claude-sonnet-4.6"),
        )
    )
    for f in manifest.files:
        target = box.home / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.content)
        target.chmod(f.mode_bits)
    modules = opencode_base_dir(OPENCODE_VERSION) / "node_modules"
    shutil.copytree(modules, box.home / ".config/opencode/node_modules", symlinks=True)
    processes = []
    for p in manifest.processes:
        argv = [str(opencode_bin()), *p.argv[1:]] if p.name == "agent" else list(p.argv)
        argv = [str(box.ports["agent"]) if a == "4096" else a for a in argv]
        processes.append(
            {
                "name": p.name,
                "argv": argv,
                "cwd": p.cwd,
                "env": p.env,
                "restart": p.restart,
                "ready_http_path": p.ready_http_path,
            }
        )
    box.write_config(processes=processes, restart_policy={"backoff_initial_s": 1, "backoff_max_s": 30})
    box.write_env(**env)


@pytest_asyncio.fixture(scope="module")
async def agent_box(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AgentBox]:
    reason = _missing()
    if reason:
        pytest.skip(reason=reason)
    async with ScriptedModel() as model, fake_gateway() as gateway:
        box = Sandbox(tmp_path_factory.mktemp("agent-sandbox"))
        ab = AgentBox(box, model, gateway)
        write_home(box, ab.session_env(box.token))
        box.start()
        events = None
        try:
            await box.wait_api()
            await box.wait_process("agent", lambda p: p.get("ready") is True, timeout=90)
            events = asyncio.create_task(ab.follow_events())
            yield ab
        finally:
            if events is not None:
                events.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                    await events
            box.stop()


def bash_turns(command: str) -> list[Turn]:
    return agent_turns(
        Turn(
            text="Running it.",
            tool_calls=[ToolCall(name="bash", arguments={"command": command, "description": "run"})],
        ),
        Turn(
            text="The command printed: {last_tool_result}", when=Match(after_tool_result=True, has_tools=True)
        ),
    )


class TestAgentInTheSandbox:
    async def test_prompt_answered_and_bash_runs_in_the_sandbox(self, agent_box: AgentBox) -> None:
        ab = agent_box
        ab.model.script(
            *bash_turns("echo sandbox-$((6*7)) | tee proof.txt; pwd"), fallback=Turn(text="Title", times=None)
        )
        created = await ab.agent("POST", "/session", json={})
        assert created.status_code == 200, created.text
        session = created.json()["id"]
        body = {
            "parts": [{"type": "text", "text": "print the marker"}],
            "model": {"providerID": "anthropic", "modelID": "claude-sonnet-4-6"},
        }
        reply = await ab.agent("POST", f"/session/{session}/message", json=body)
        assert reply.status_code == 200, reply.text
        assert "The command printed: sandbox-42" in text_of(reply.json())
        # bash really ran inside the sandbox, in the repo dir
        assert (ab.box.home / "workspace" / "proof.txt").read_text() == "sandbox-42\n"
        messages = (await ab.agent("GET", f"/session/{session}/message")).json()
        [bash] = tool_parts(messages, "bash")
        assert (
            bash["state"]["status"] == "completed"
            and str(ab.box.home / "workspace") in bash["state"]["output"]
        )

        def bash_event_seen() -> bool:
            for ev in ab.events:
                part = (ev.get("properties") or {}).get("part") or {}
                if part.get("tool") == "bash" and "sandbox-42" in str(
                    (part.get("state") or {}).get("output")
                ):
                    return True
            return False

        await until(_sync(bash_event_seen), 20, "the bash output never came through the event stream")
        # The LLM calls went to the configured endpoint with the virtual key from session.env.
        turns = [r for r in ab.model.requests if r.has_tools]
        assert turns and all(r.api == "anthropic" for r in turns)
        assert turns[0].headers["x-api-key"] == VIRTUAL_KEY
        # Exactly the mode's platform tools were offered to the model.
        offered = set(turns[0].tool_names)
        assert {"verify", "save_snapshot", "bash"} <= offered
        assert not offered & {"save_service_commands", "automation_complete"}

    async def test_agent_needs_the_token_and_its_loopback_port_a_password(self, agent_box: AgentBox) -> None:
        async with httpx.AsyncClient() as client:
            res = await client.get(f"{agent_box.box.router_url}/_proliferate/agent/session")
            assert res.status_code == 401
            # Other sandboxes share the host's loopback: the agent's own port refuses them.
            direct = await client.get(f"http://127.0.0.1:{agent_box.box.ports['agent']}/session")
            assert direct.status_code == 401

    async def test_platform_tool_calls_the_gateway_from_inside_opencode(self, agent_box: AgentBox) -> None:
        ab = agent_box
        result = {"success": True, "result": "Snapshot snap-1 saved.", "data": {"snapshot_id": "snap-1"}}
        ab.gateway.on("POST", "/tools/save_snapshot", (200, result))
        ab.model.reset()
        ab.model.script(
            *agent_turns(
                Turn(tool_calls=[ToolCall(name="save_snapshot", arguments={"message": "after setup"})]),
                Turn(
                    text="Tool said: {last_tool_result}", when=Match(after_tool_result=True, has_tools=True)
                ),
            ),
            fallback=Turn(text="Title", times=None),
        )
        session = (await ab.agent("POST", "/session", json={})).json()["id"]
        body = {
            "parts": [{"type": "text", "text": "save a snapshot"}],
            "model": {"providerID": "anthropic", "modelID": "claude-sonnet-4-6"},
        }
        reply = await ab.agent("POST", f"/session/{session}/message", json=body)
        assert "Tool said: Snapshot snap-1 saved." in text_of(reply.json()), reply.text
        [call] = ab.gateway.calls("POST", "/tools/save_snapshot")
        assert call.path == f"/v1/sessions/{SESSION_ID}/tools/save_snapshot"
        assert call.headers["authorization"] == f"Bearer {ab.box.token}"
        assert call.headers["x-proliferate-contract"] == "1"
        sent = call.json()
        assert sent["args"] == {"message": "after setup"} and uuid.UUID(sent["tool_call_id"]).version == 4

    async def test_killed_agent_is_restarted_within_30_s(self, agent_box: AgentBox) -> None:
        box = agent_box.box
        before = await box.wait_process("agent", lambda p: p.get("ready") is True)
        os.killpg(before["pid"], signal.SIGKILL)
        after = await box.wait_process(
            "agent",
            lambda p: p.get("ready") is True and p.get("pid") not in (None, before["pid"]),
            timeout=30,
        )
        assert after["restarts"] == 1
        assert (await agent_box.agent("GET", "/session")).status_code == 200

    async def test_rotated_token_old_401_new_200(self, agent_box: AgentBox) -> None:
        ab, box = agent_box, agent_box.box
        sessions_before = {s["id"] for s in (await ab.agent("GET", "/session")).json()}
        old, new = box.token, register_canary("sbx_rotated_" + uuid.uuid4().hex)
        box.write_env(token=new, **{**ab.session_env(new)})
        await until(_status_is(ab, old, 401), 5, "the old token still worked after 5 s")
        box.token = new
        await until(_status_is(ab, new, 200), 60, "the new token never worked")
        assert (await box.boot())["processes"]["agent"]["restarts"] == 1, "the env restart is not a crash"
        # The agent restarted with the new env; its sessions persist on disk.
        sessions_after = {s["id"] for s in (await ab.agent("GET", "/session")).json()}
        assert sessions_before <= sessions_after


def _sync(fn: Any) -> Any:
    async def check() -> bool:
        return bool(fn())

    return check


def _status_is(ab: AgentBox, token: str, status: int) -> Any:
    async def check() -> bool:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                res = await client.get(
                    f"{ab.box.router_url}/_proliferate/agent/session", headers=ab.box.auth(token)
                )
            return res.status_code == status
        except httpx.HTTPError:
            return False

    return check
