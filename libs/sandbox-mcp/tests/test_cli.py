"""The `proliferate` CLI: services against a real supervisor (run inside the sandbox through exec, as the
agent runs it), actions against a fake gateway."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from .conftest import Sandbox, until
from .fake_gateway import FakeGateway, fake_gateway


async def cli(box: Sandbox, *args: str, **env: str) -> tuple[int, str, str]:
    out = await box.exec(["proliferate", *args], env=env, cwd="workspace")
    return out["exit_code"], out["stdout"], out["stderr"]


class TestServicesCommands:
    async def test_start_list_restart_logs_stop(self, sandbox: Sandbox) -> None:
        (sandbox.home / "workspace" / "app").mkdir()
        args = ["services", "start", "--name", "web", "--command", "pwd; sleep 300", "--cwd", "app"]
        code, out, err = await cli(sandbox, *args)
        assert code == 0, err
        first = json.loads(out)
        assert first["status"] == "running" and first["cwd"] == "app"
        code, out, _ = await cli(sandbox, "services", "list")
        assert [s["name"] for s in json.loads(out)["services"]] == ["web"]
        code, out, err = await cli(sandbox, "services", "restart", "--name", "web")
        assert code == 0, err
        again = json.loads(out)
        assert again["pid"] != first["pid"] and again["command"] == "pwd; sleep 300" and again["cwd"] == "app"

        async def logged() -> bool:
            return (await cli(sandbox, "services", "logs", "--name", "web"))[1].count("/workspace/app") == 2

        await until(logged, 10)
        code, out, _ = await cli(sandbox, "services", "stop", "--name", "web")
        assert code == 0 and json.loads(out)["status"] == "stopped"

    async def test_expose_and_info(self, sandbox: Sandbox) -> None:
        code, out, _ = await cli(sandbox, "services", "expose", "--port", "3000")
        assert code == 0 and json.loads(out) == {"exposed_port": 3000}
        code, out, _ = await cli(
            sandbox, "info", PROLIFERATE_SESSION_ID="sess-1", PROLIFERATE_CONTRACT_VERSION="1"
        )
        info = json.loads(out)
        assert info["exposed_port"] == 3000 and info["session_id"] == "sess-1"
        assert info["sandbox_id"] == sandbox.sandbox_id and info["contract_version"] == 1

    async def test_usage_errors_exit_2(self, sandbox: Sandbox) -> None:
        code, _, err = await cli(sandbox, "services", "expose", "--port", "abc")
        assert code == 2 and "positive integer" in err
        assert (await cli(sandbox, "services", "expose", "--port", "-5"))[0] == 2
        assert (await cli(sandbox, "services", "start", "--name", "x"))[0] == 2  # --command missing
        assert (await cli(sandbox, "services", "list", SANDBOX_MCP_AUTH_TOKEN=""))[0] == 2

    async def test_operation_failures_exit_1(self, sandbox: Sandbox) -> None:
        code, _, err = await cli(sandbox, "services", "restart", "--name", "unknown")
        assert code == 1 and "no service named unknown" in err
        code, _, err = await cli(sandbox, "services", "expose", "--port", "4096")
        assert code == 1 and "invalid_port" in err
        code, _, err = await cli(sandbox, "services", "start", "--name", "../../etc", "--command", "true")
        assert code == 1 and "invalid_service_name" in err
        code, _, _ = await cli(sandbox, "services", "list", SANDBOX_MCP_AUTH_TOKEN="sbx_wrong_token_1234567")
        assert code == 1


# --- actions, against a fake gateway ----------------------------------------------------------------

SESSION = "0190d9a8-0000-7000-8000-00000000abcd"
TOKEN = "sbx_cli_" + "k" * 30


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with fake_gateway() as gw:
        yield gw


def run(gw: FakeGateway, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    base = {
        **os.environ,
        "PROLIFERATE_GATEWAY_URL": f"http://127.0.0.1:{gw.port}",
        "PROLIFERATE_SESSION_ID": SESSION,
        "SANDBOX_MCP_AUTH_TOKEN": TOKEN,
    }
    for k, v in env.items():
        if v is None:
            base.pop(k, None)
        else:
            base[k] = v
    return subprocess.run(["proliferate", *args], capture_output=True, text=True, env=base, timeout=120)


async def arun(gw: FakeGateway, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run, gw, *args, **env)


def invocation(status: str, **extra: Any) -> dict[str, Any]:
    return {"invocation": {"id": "inv-1", "status": status, **extra}}


class TestActionsCommands:
    async def test_list_and_guide(self, gateway: FakeGateway) -> None:
        gateway.on("GET", "/actions/available", (200, {"sources": [{"id": "linear", "actions": []}]}))
        gateway.on("GET", "/actions/guide/linear", (200, {"guide": "# Linear\nUse create_issue."}))
        done = await arun(gateway, "actions", "list")
        assert done.returncode == 0 and json.loads(done.stdout)["sources"][0]["id"] == "linear"
        done = await arun(gateway, "actions", "guide", "--integration", "linear")  # deprecated alias
        assert done.returncode == 0 and done.stdout == "# Linear\nUse create_issue.\n"
        req = gateway.calls("GET", "/actions/available")[0]
        assert req.path == f"/v1/sessions/{SESSION}/actions/available"
        assert req.headers["authorization"] == f"Bearer {TOKEN}"

    async def test_run_allowed_prints_result(self, gateway: FakeGateway) -> None:
        gateway.on(
            "POST",
            "/actions/invoke",
            (200, {"invocation": {"id": "i", "status": "completed"}, "result": {"ok": 1}}),
        )
        args = [
            "actions",
            "run",
            "--source",
            "linear",
            "--action",
            "get_issue",
            "--params",
            '{"id": "ENG-1"}',
        ]
        done = await arun(gateway, *args)
        assert done.returncode == 0 and json.loads(done.stdout) == {"ok": 1}
        body = gateway.calls("POST", "/actions/invoke")[0].json()
        assert (
            body["source_id"] == "linear"
            and body["action_id"] == "get_issue"
            and body["params"] == {"id": "ENG-1"}
        )
        assert uuid.UUID(body["idempotency_key"])

    async def test_run_waits_for_approval_then_prints_result(self, gateway: FakeGateway) -> None:
        gateway.on(
            "POST", "/actions/invoke", (202, {**invocation("pending"), "message": "Action requires approval"})
        )
        completed = {**invocation("completed"), "result": "issue created"}
        steps = [(200, invocation("pending")), (200, invocation("executing")), (200, completed)]
        gateway.on("GET", "/actions/invocations/inv-1", *steps)
        done = await arun(gateway, "actions", "run", "--source", "linear", "--action", "create_issue")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == "issue created" and "Waiting for approval..." in done.stderr
        polls = gateway.calls("GET", "/actions/invocations/inv-1")
        assert len(polls) == 3 and all("wait=25" in p.path for p in polls)

    @pytest.mark.parametrize("outcome", ["denied", "expired", "failed"])
    async def test_run_not_completed_exits_1(self, gateway: FakeGateway, outcome: str) -> None:
        gateway.on("POST", "/actions/invoke", (202, invocation("pending")))
        gateway.on("GET", "/actions/invocations/inv-1", (200, invocation(outcome, denied_reason="user")))
        done = await arun(gateway, "actions", "run", "--source", "linear", "--action", "create_issue")
        assert done.returncode == 1 and f"action {outcome}" in done.stderr

    @pytest.mark.parametrize("status", [403, 502])
    async def test_run_denied_or_failed_upfront_exits_1(self, gateway: FakeGateway, status: int) -> None:
        gateway.on("POST", "/actions/invoke", (status, {**invocation("denied"), "error": "policy denies it"}))
        done = await arun(gateway, "actions", "run", "--source", "linear", "--action", "delete_project")
        assert done.returncode == 1 and "policy denies it" in done.stderr

    async def test_transport_retry_reuses_the_idempotency_key(self, gateway: FakeGateway) -> None:
        gateway.on("POST", "/actions/invoke", None, (200, {**invocation("completed"), "result": "once"}))
        done = await arun(gateway, "actions", "run", "--source", "linear", "--action", "get_issue")
        assert done.returncode == 0 and json.loads(done.stdout) == "once"
        keys = [r.json()["idempotency_key"] for r in gateway.calls("POST", "/actions/invoke")]
        assert len(keys) == 2 and keys[0] == keys[1]

    async def test_bad_params_and_missing_token_exit_2_without_a_request(self, gateway: FakeGateway) -> None:
        done = await arun(gateway, "actions", "run", "--source", "s", "--action", "a", "--params", "not json")
        assert done.returncode == 2 and "not valid JSON" in done.stderr
        done = await arun(gateway, "actions", "run", "--source", "s", "--action", "a", "--params", "[1]")
        assert done.returncode == 2
        done = await arun(gateway, "actions", "list", SANDBOX_MCP_AUTH_TOKEN=None)
        assert done.returncode == 2 and "SANDBOX_MCP_AUTH_TOKEN" in done.stderr
        assert gateway.seen == []

    async def test_there_are_no_grant_commands_and_no_token_flag(self, gateway: FakeGateway) -> None:
        assert (await arun(gateway, "actions", "grant", "--source", "s")).returncode == 2
        done = await arun(gateway, "actions", "list", "--token", TOKEN)
        assert done.returncode == 2 and gateway.seen == []
