from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx

from .conftest import Sandbox, fake_agent, until

CRASHER = {"name": "crasher", "argv": [sys.executable, "-c", "import sys; sys.exit(3)"], "restart": "always"}


class TestStartGating:
    async def test_exec_answers_at_once_and_the_api_waits_for_both_files(self, bare_sandbox: Sandbox) -> None:
        box = bare_sandbox
        out = await box.exec(["echo", "before config"])
        assert out["exit_code"] == 0 and out["stdout"] == "before config\n"
        box.write_config(processes=[fake_agent(box.ports["agent"])])
        await _api_stays_down(box)
        box.write_env()
        await box.wait_api()
        proc = await box.wait_process("agent", lambda p: p.get("ready") is True)
        assert proc["state"] == "running"

    async def test_probes_lost_while_the_agent_starts_do_not_hold_readiness(
        self, bare_sandbox: Sandbox, tmp_path: Path
    ) -> None:
        # Like OpenCode at start: the first requests are accepted and never answered.
        sandbox = bare_sandbox
        stats = tmp_path / "agent-stats.json"
        sandbox.write_config(processes=[_agent_losing_first_requests(sandbox.ports["agent"], stats, lost=2)])
        sandbox.write_env()
        await sandbox.wait_api()
        proc = await sandbox.wait_process("agent", lambda p: p.get("ready") is True)
        assert proc["state"] == "running"

        async def all_probes_closed() -> bool:
            seen = json.loads(stats.read_text()) if stats.exists() else {}
            return seen.get("lost") == 2 and seen.get("open") == 0

        # Once ready, the supervisor drops the probes still waiting and sends no more.
        await until(all_probes_closed, 10, lambda: f"agent saw {stats.read_text()}")
        settled = json.loads(stats.read_text())["connections"]
        await asyncio.sleep(0.5)
        assert json.loads(stats.read_text())["connections"] == settled


def _agent_losing_first_requests(port: int, stats: Path, lost: int) -> dict[str, object]:
    script = f"""
import asyncio, json
seen = {{"connections": 0, "open": 0, "lost": 0}}
def save():
    open({str(stats)!r}, "w").write(json.dumps(seen))
async def handle(reader, writer):
    seen["connections"] += 1; seen["open"] += 1; save()
    try:
        await reader.readuntil(b"\\r\\n\\r\\n")
        if seen["lost"] < {lost}:
            seen["lost"] += 1; save()
            await reader.read()  # never answered: held until the prober hangs up
        else:
            writer.write(b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\nconnection: close\\r\\n\\r\\n[]")
            await writer.drain()
    except Exception:
        pass
    finally:
        writer.close(); seen["open"] -= 1; save()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", {port})
    await server.serve_forever()
asyncio.run(main())
"""
    return fake_agent(port, argv=[sys.executable, "-c", script])


async def _api_stays_down(box: Sandbox) -> None:
    # supervisor.json alone must not start anything: a restored home carries a stale one.
    for _ in range(5):
        try:
            async with httpx.AsyncClient() as client:
                await client.get(f"{box.api_url}/api/health", timeout=0.5)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        raise AssertionError("the API started before session.env existed")


class TestExec:
    async def test_argv_is_not_shell_interpreted_and_cwd_is_honoured(self, sandbox: Sandbox) -> None:
        out = await sandbox.exec(["echo", "$HOME; rm -rf /"], cwd="workspace")
        assert out["stdout"] == "$HOME; rm -rf /\n"
        out = await sandbox.exec(["pwd"], cwd="workspace")
        assert out["stdout"].strip() == str(sandbox.home / "workspace")
        out = await sandbox.exec(["pwd"])
        assert out["stdout"].strip() == str(sandbox.home)

    async def test_timeout_is_exit_124(self, sandbox: Sandbox) -> None:
        out = await sandbox.exec(["sleep", "30"], timeout_s=0.5)
        assert out["exit_code"] == 124

    async def test_streams_capped_at_16_kib_with_marker(self, sandbox: Sandbox) -> None:
        out = await sandbox.exec(
            [sys.executable, "-c", "import sys; print('x' * 20000); print('e' * 10, file=sys.stderr)"]
        )
        assert out["stdout_truncated"] is True and out["stdout"] == "x" * 16384 + "...[truncated]"
        assert out["stderr_truncated"] is False and out["stderr"] == "e" * 10 + "\n"

    async def test_env_is_session_env_overlaid_by_request(self, sandbox: Sandbox) -> None:
        sandbox.write_env(GREETING="from session", OTHER="kept")
        await until(lambda: _printenv(sandbox, "GREETING", "from session"), 10)
        out = await sandbox.exec(
            ["sh", "-c", "echo $GREETING/$OTHER/$PROLIFERATE_SANDBOX_ID"], env={"GREETING": "req"}
        )
        assert out["stdout"] == f"req/kept/{sandbox.sandbox_id}\n"

    async def test_bad_requests(self, sandbox: Sandbox) -> None:
        assert (await sandbox.exec([]))["_status"] == 400
        assert (await sandbox.exec(["true"], cwd="/etc"))["_status"] == 400
        assert (await sandbox.exec(["true"], cwd="../../"))["_status"] == 400
        assert (await sandbox.exec(["true"], timeout_s=601))["_status"] == 400
        missing = await sandbox.exec(["no-such-program-here"])
        assert missing["_status"] == 200 and missing["exit_code"] == 127


async def _printenv(box: Sandbox, key: str, value: str) -> bool:
    return (await box.exec(["printenv", key]))["stdout"] == f"{value}\n"


class TestRestarts:
    async def test_killed_process_is_restarted(self, sandbox: Sandbox) -> None:
        first = await sandbox.wait_process("agent", lambda p: p.get("ready") is True)
        os.killpg(first["pid"], signal.SIGKILL)
        again = await sandbox.wait_process(
            "agent", lambda p: p.get("ready") is True and p.get("pid") not in (None, first["pid"])
        )
        assert again["restarts"] == 1 and again["state"] == "running"

    async def test_sixth_crash_in_window_is_reported_and_not_restarted(self, tmp_path: object) -> None:
        box = Sandbox(tmp_path)  # type: ignore[arg-type]
        box.write_config(processes=[CRASHER])
        box.write_env()
        box.start()
        try:
            await box.wait_api()
            proc = await box.wait_process("crasher", lambda p: p.get("state") == "gave_up")
            assert proc["restarts"] == 5 and proc["restarts_in_window"] == 5
            assert proc["last_exit_code"] == 3 and "6 crashes" in proc["error"]
            status = json.loads((box.home / ".proliferate" / "boot-status.json").read_text())
            assert status["processes"]["crasher"]["state"] == "gave_up"
        finally:
            box.stop()


class TestSessionEnv:
    async def test_changed_token_old_401_new_200_and_agent_restarted(self, sandbox: Sandbox) -> None:
        before = await sandbox.wait_process("agent", lambda p: p.get("ready") is True)
        old, new = sandbox.token, "sbx_rotated_" + "n" * 24
        sandbox.write_env(token=new)
        started = time.monotonic()

        async def old_refused() -> bool:
            async with httpx.AsyncClient() as client:
                return (
                    await client.get(
                        f"{sandbox.router_url}/_proliferate/mcp/api/services", headers=sandbox.auth(old)
                    )
                ).status_code == 401

        await until(old_refused, 5.0, "the old token was still accepted after 5 s")
        assert time.monotonic() - started < 5.0
        async with httpx.AsyncClient() as client:
            res = await client.get(
                f"{sandbox.router_url}/_proliferate/mcp/api/services", headers=sandbox.auth(new)
            )
            assert res.status_code == 200
        sandbox.token = new
        after = await sandbox.wait_process("agent", lambda p: p.get("pid") not in (None, before["pid"]))
        assert after.get("restarts", 0) == 0, "an env change is not a crash"

    async def test_vanished_env_changes_nothing(self, sandbox: Sandbox) -> None:
        before = await sandbox.wait_process("agent", lambda p: p.get("ready") is True)
        (sandbox.tmp / "proliferate" / "session.env").unlink()
        time.sleep(1.0)  # several poll intervals: the supervisor must keep the last env
        assert (await sandbox.boot())["processes"]["agent"]["pid"] == before["pid"]


class TestPhase2:
    async def test_setup_commands_in_order_then_autostart(self, tmp_path: object) -> None:
        box = Sandbox(tmp_path)  # type: ignore[arg-type]
        box.write_config(
            setup_commands=[
                {"name": "first", "command": "echo one >> order.txt"},
                {"name": "broken", "command": "exit 7"},
                {"name": "second", "command": "echo two >> order.txt"},
            ],
            service_commands=[{"name": "web", "command": "sleep 300"}],
            autostart_services=True,
        )
        box.write_env()
        box.start()
        try:
            await box.wait_api()

            async def done() -> bool:
                return (await box.boot())["phase2"]["state"] == "done"

            await until(done, 30)
            steps = (await box.boot())["phase2"]["steps"]
            assert [(s["kind"], s["name"], s["status"]) for s in steps] == [
                ("setup_command", "first", "ok"),
                ("setup_command", "broken", "failed"),
                ("setup_command", "second", "ok"),
                ("service", "web", "started"),
            ]
            assert (box.home / "workspace" / "order.txt").read_text() == "one\ntwo\n"
            async with httpx.AsyncClient() as client:
                services = (await client.get(f"{box.api_url}/api/services", headers=box.auth())).json()
            assert [(s["name"], s["status"]) for s in services["services"]] == [("web", "running")]
        finally:
            box.stop()

    async def test_services_not_started_without_autostart(self, tmp_path: object) -> None:
        box = Sandbox(tmp_path)  # type: ignore[arg-type]
        box.write_config(service_commands=[{"name": "web", "command": "sleep 300"}], autostart_services=False)
        box.write_env()
        box.start()
        try:
            await box.wait_api()

            async def done() -> bool:
                return (await box.boot())["phase2"]["state"] == "done"

            await until(done, 30)
            async with httpx.AsyncClient() as client:
                services = (await client.get(f"{box.api_url}/api/services", headers=box.auth())).json()
            assert services["services"] == []
        finally:
            box.stop()


class TestBadConfig:
    async def test_unreadable_supervisor_json_is_reported_and_exec_keeps_working(
        self, bare_sandbox: Sandbox
    ) -> None:
        box = bare_sandbox
        (box.home / ".proliferate").mkdir(parents=True, exist_ok=True)
        (box.home / ".proliferate" / "supervisor.json").write_text('{"ports": "not an object"}')
        box.write_env()
        status_file = box.home / ".proliferate" / "boot-status.json"

        async def failed() -> bool:
            return status_file.exists() and json.loads(status_file.read_text()).get("state") == "failed"

        await until(failed, 10, "a bad supervisor.json was not reported in boot-status.json")
        assert "ports" in json.loads(status_file.read_text())["error"]
        assert (await box.exec(["echo", "still here"]))["stdout"] == "still here\n"
