"""Issue 4 C3 and C4 with the real agent: a local sandbox booted by EnsureSandbox runs the pinned
OpenCode, configured by the manifest and pointed (through `llm.base_url`, the llm_proxy's place)
at the scripted OpenAI-compatible model; a prompt through the router is answered, OpenCode's
`bash` tool runs inside the sandbox and its output arrives in the agent's events. Then the
sandbox is captured, terminated and restored: the agent's file is back, the secret file is
rewritten from the request and was never in the archive. One OpenCode process per boot."""

from __future__ import annotations

import asyncio
import contextlib
import json
import tarfile
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import zstandard
from conformance_support import Conformance, _skip_reason, until
from proliferate.agent_contract import OPENCODE_VERSION
from proliferate.devkit.paths import opencode_base_dir, opencode_bin
from proliferate.devkit.pytest_plugin import register_canary
from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from proliferate.scripted_model import Match, ScriptedModel, ToolCall, Turn, agent_turns
from proliferate.scripted_model.opencode import text_of, tool_parts

pytestmark = pytest.mark.slow

MODEL = "gpt-5.2"  # an OpenAI-compatible model: OpenCode's `litellm` provider block


def _missing() -> str | None:
    if not opencode_bin().exists():
        return f"OpenCode is not installed at {opencode_bin()}: run `make opencode`"
    if not (opencode_base_dir(OPENCODE_VERSION) / "node_modules").exists():
        return "the agent base layer is missing: run `make opencode-base`"
    return None


async def follow(url: str, token: str, events: list[dict[str, Any]]) -> None:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client,
        client.stream("GET", f"{url}/event", headers={"Authorization": f"Bearer {token}"}) as res,
    ):
        async for line in res.aiter_lines():
            if line.startswith("data: "):
                with contextlib.suppress(ValueError):
                    events.append(json.loads(line[len("data: ") :]))


@pytest.mark.parametrize("case", ["local-process", "local-bwrap"])
async def test_c3_c4_opencode_in_a_local_sandbox(case: str, conformance_factory: Any) -> None:
    reason = _missing() or _skip_reason(case)
    if reason:
        pytest.skip(reason=reason)
    async with ScriptedModel() as model:
        sbx: Conformance = await conformance_factory(
            case, SANDBOX_LOCAL_AGENT_COMMAND="", SANDBOX_AGENT_READY_TIMEOUT_SECONDS="60"
        )
        token = register_canary("sbx-agent-" + uuid.uuid4().hex)
        key = register_canary("sk-virtual-" + uuid.uuid4().hex)
        secret = pb.SecretFile(
            workspace_path="app", file_path=".env.local", content=b"API_KEY=first-secret-value\n"
        )
        request: dict[str, Any] = {
            "agent": pb.AgentConfig(model_id=MODEL),
            "llm": pb.LlmAccess(base_url=model.url, api_key=key),
            "sandbox_token": token,
            "secret_files": [secret],
        }
        booted = await sbx.ensure(**request)
        assert booted.agent_ready, [(s.name, s.status, s.detail) for s in booted.boot.steps]
        url = booted.sandbox.opencode_url
        headers = {"Authorization": f"Bearer {token}"}
        events: list[dict[str, Any]] = []
        follower = asyncio.create_task(follow(url, token, events))
        command = "echo sandbox-$((6*7)) | tee proof.txt; id -un"
        run = ToolCall(name="bash", arguments={"command": command, "description": "run"})
        after = Match(after_tool_result=True, has_tools=True)
        model.script(
            *agent_turns(
                Turn(text="Running it.", tool_calls=[run]),
                Turn(text="The command printed: {last_tool_result}", when=after),
            ),
            fallback=Turn(text="Title", times=None),
        )
        try:
            async with httpx.AsyncClient(timeout=180) as client:
                created = await client.post(f"{url}/session", json={}, headers=headers)
                assert created.status_code == 200, created.text
                session = created.json()["id"]
                body = {
                    "parts": [{"type": "text", "text": "print the marker"}],
                    "model": {"providerID": "litellm", "modelID": MODEL},
                }
                reply = await client.post(f"{url}/session/{session}/message", json=body, headers=headers)
                assert reply.status_code == 200, reply.text
                assert "The command printed: sandbox-42" in text_of(reply.json())
                messages = (await client.get(f"{url}/session/{session}/message", headers=headers)).json()
            [bash] = tool_parts(messages, "bash")
            assert bash["state"]["status"] == "completed" and "sandbox-42" in bash["state"]["output"]
            # The model was reached through the OpenAI-compatible route with the virtual key.
            assert any(r.path.endswith("/chat/completions") for r in model.requests)
            assert all(
                r.headers.get("authorization") == f"Bearer {key}"
                for r in model.requests
                if r.path.endswith("/chat/completions")
            )

            def bash_event_seen() -> bool:
                for ev in events:
                    part = (ev.get("properties") or {}).get("part") or {}
                    if part.get("tool") == "bash" and "sandbox-42" in str(
                        (part.get("state") or {}).get("output")
                    ):
                        return True
                return False

            await until(bash_event_seen, timeout=30)
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await follower
        home = sbx.home(booted)
        assert (await sbx.read(booted.sandbox.id, f"{home}/workspace/app/proof.txt")) == "sandbox-42\n"
        # bash ran as the sandbox user, never root
        assert "root" not in bash["state"]["output"].split()

        # C4: capture + terminate + ensure from the artifact.
        art = (
            await sbx.capture(
                booted.sandbox.id,
                purpose=pb.CaptureSnapshotRequest.SAVE,
                scrub=pb.CaptureSnapshotRequest.STRICT,
            )
        ).artifact
        await sbx.terminate(booted.sandbox.id)
        async with sbx.db.engine.connect() as conn:
            ref = (
                await conn.execute(
                    sa.text("SELECT provider_ref FROM snapshot_artifacts WHERE id = :id"),
                    {"id": uuid.UUID(art.id)},
                )
            ).scalar_one()
        with (
            open(sbx.root / "snapshots" / ref, "rb") as raw,
            tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(raw), mode="r|") as tar,
        ):
            names = {m.name: m for m in tar}
        assert "workspace/app/proof.txt" in names and "workspace/app/.env.local" not in names
        rotated = pb.SecretFile(
            workspace_path="app", file_path=".env.local", content=b"API_KEY=second-secret-value\n"
        )
        restored = await sbx.ensure(
            session=booted.sandbox.session_id,
            restore_artifact_id=art.id,
            **{
                **request,
                "secret_files": [rotated],
                "sandbox_token": register_canary("sbx-agent-" + uuid.uuid4().hex),
            },
        )
        assert restored.restore_outcome == "restored" and restored.agent_ready
        rhome = sbx.home(restored)
        assert (await sbx.read(restored.sandbox.id, f"{rhome}/workspace/app/proof.txt")) == "sandbox-42\n"
        assert (
            await sbx.read(restored.sandbox.id, f"{rhome}/workspace/app/.env.local")
        ) == "API_KEY=second-secret-value\n"
