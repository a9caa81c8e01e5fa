"""sandbox-mcp's API, reached through the router as the gateway reaches it."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from pathlib import Path

import aiohttp
import httpx
import pytest

from .conftest import Sandbox, until


def rid(rel: str) -> str:
    return base64.urlsafe_b64encode(rel.encode()).decode().rstrip("=")


def mcp(box: Sandbox, path: str) -> str:
    return f"{box.router_url}/_proliferate/mcp{path}"


class TestAuth:
    async def test_health_is_open_everything_else_needs_the_token(self, sandbox: Sandbox) -> None:
        async with httpx.AsyncClient() as client:
            assert (await client.get(mcp(sandbox, "/api/health"))).status_code == 200
            for path in ("/api/services", "/api/boot", "/api/auth/check", "/api/git/repos", "/api/logs/web"):
                assert (await client.get(mcp(sandbox, path))).status_code == 401, path
                res = await client.get(
                    mcp(sandbox, path), headers=sandbox.auth("sbx_someone_elses_token_000")
                )
                assert res.status_code == 401, path
                assert res.json()["error"]["code"] == "unauthorized"
            res = await client.get(mcp(sandbox, "/api/auth/check"), headers=sandbox.auth())
            assert res.status_code == 200
            # The API itself (loopback) enforces it too, not only the router.
            assert (await client.get(f"{sandbox.api_url}/api/services")).status_code == 401
            res = await client.get(mcp(sandbox, "/api/services"), headers={"Authorization": sandbox.token})
            assert res.status_code == 401, "the bearer scheme is required"

    async def test_every_platform_path_needs_the_token(self, sandbox: Sandbox) -> None:
        async with httpx.AsyncClient() as client:
            for path in ("/_proliferate/agent/session", "/_proliferate/vscode/", "/_proliferate/other"):
                assert (await client.get(sandbox.router_url + path)).status_code == 401, path


class TestServices:
    async def test_start_list_logs_stop(self, sandbox: Sandbox) -> None:
        async with httpx.AsyncClient(headers=sandbox.auth()) as client:
            command = "echo hello; echo $FORCE_COLOR; sleep 300"
            res = await client.post(mcp(sandbox, "/api/services"), json={"name": "web", "command": command})
            assert res.status_code == 200 and res.json()["status"] == "running"

            async def logged() -> bool:
                res = await client.get(mcp(sandbox, "/api/logs/web"))
                return "data: hello" in res.text

            await until(logged, 10)
            res = await client.get(mcp(sandbox, "/api/logs/web"))
            assert res.headers["content-type"].startswith("text/event-stream")
            assert "data: 1" in res.text and res.text.rstrip().endswith("event: end\ndata:")
            listing = (await client.get(mcp(sandbox, "/api/services"))).json()
            assert [(s["name"], s["status"]) for s in listing["services"]] == [("web", "running")]
            stopped = await client.delete(mcp(sandbox, "/api/services/web"))
            assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
            assert (await client.delete(mcp(sandbox, "/api/services/nope"))).status_code == 404

    async def test_exit_codes_become_stopped_or_error(self, sandbox: Sandbox) -> None:
        async with httpx.AsyncClient(headers=sandbox.auth()) as client:
            await client.post(mcp(sandbox, "/api/services"), json={"name": "ok", "command": "true"})
            await client.post(mcp(sandbox, "/api/services"), json={"name": "bad", "command": "exit 4"})

            async def settled() -> bool:
                listing = (await client.get(mcp(sandbox, "/api/services"))).json()["services"]
                return {s["name"]: s["status"] for s in listing} == {"bad": "error", "ok": "stopped"}

            await until(settled, 10)

    async def test_starting_a_name_again_replaces_its_process_group(self, sandbox: Sandbox) -> None:
        async with httpx.AsyncClient(headers=sandbox.auth()) as client:
            body = {"name": "w", "command": "sleep 300 & sleep 300"}
            first = (await client.post(mcp(sandbox, "/api/services"), json=body)).json()
            second = (
                await client.post(mcp(sandbox, "/api/services"), json={"name": "w", "command": "sleep 300"})
            ).json()
        assert first["pid"] != second["pid"]

        async def old_group_gone() -> bool:
            ps = subprocess.run(
                ["ps", "-o", "stat=", "--sid", str(first["pid"])], capture_output=True, text=True
            )
            return all(state.startswith("Z") for state in ps.stdout.split())  # zombies await their reaper

        await until(old_group_gone, 10, "the previous process group is still running")

    @pytest.mark.parametrize("name", ["../../etc", "..", ".hidden", "a/b", "", "x" * 101])
    async def test_unsafe_service_names_are_400(self, sandbox: Sandbox, name: str) -> None:
        async with httpx.AsyncClient(headers=sandbox.auth()) as client:
            res = await client.post(mcp(sandbox, "/api/services"), json={"name": name, "command": "true"})
            assert res.status_code == 400 and res.json()["error"]["code"] == "invalid_service_name"
        assert not (sandbox.tmp / "etc.log").exists()

    async def test_log_path_traversal_is_400(self, sandbox: Sandbox) -> None:
        async with httpx.AsyncClient(headers=sandbox.auth()) as client:
            res = await client.get(mcp(sandbox, "/api/logs/..%2F..%2Fetc"))
            assert res.status_code == 400
            res = await client.delete(mcp(sandbox, "/api/services/..%2F..%2Fetc"))
            assert res.status_code == 400

    async def test_cwd_outside_home_is_400(self, sandbox: Sandbox) -> None:
        async with httpx.AsyncClient(headers=sandbox.auth()) as client:
            res = await client.post(
                mcp(sandbox, "/api/services"), json={"name": "w", "command": "true", "cwd": "/etc"}
            )
            assert res.status_code == 400 and res.json()["error"]["code"] == "invalid_cwd"


class TestExpose:
    @pytest.mark.parametrize(
        "port", [4096, 4000, 20000, 3901, 22, 2375, 2376, 0, 65536, -1, "3000", 3000.5, True]
    )
    async def test_reserved_or_invalid_ports_are_400(self, sandbox: Sandbox, port: object) -> None:
        async with httpx.AsyncClient(headers=sandbox.auth()) as client:
            res = await client.post(mcp(sandbox, "/api/expose"), json={"port": port})
            assert res.status_code == 400, port

    async def test_the_sandboxs_own_block_ports_are_refused(self, sandbox: Sandbox) -> None:
        async with httpx.AsyncClient(headers=sandbox.auth()) as client:
            for port in sandbox.ports.values():
                assert (
                    await client.post(mcp(sandbox, "/api/expose"), json={"port": port})
                ).status_code == 400

    async def test_expose_records_the_port(self, sandbox: Sandbox) -> None:
        async with httpx.AsyncClient(headers=sandbox.auth()) as client:
            res = await client.post(mcp(sandbox, "/api/expose"), json={"port": 5173})
            assert res.status_code == 200 and res.json() == {"exposed_port": 5173}
            assert (await client.get(mcp(sandbox, "/api/services"))).json()["exposed_port"] == 5173


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(sandbox: Sandbox) -> Path:
    repo = sandbox.home / "workspace" / "api"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(
        repo,
        "-c",
        "user.email=t@example.test",
        "-c",
        "user.name=t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "init",
    )
    (repo / "app.py").write_text("print('hi')\n")
    git(repo, "add", "app.py")
    git(repo, "-c", "user.email=t@example.test", "-c", "user.name=t", "commit", "-q", "-m", "app")
    (repo / "app.py").write_text("print('hello')\n")
    (repo / "new.txt").write_text("new\n")
    return repo


class TestGit:
    async def test_repos_status_diff(self, sandbox: Sandbox, repo: Path) -> None:
        async with httpx.AsyncClient(headers=sandbox.auth()) as client:
            repos = (await client.get(mcp(sandbox, "/api/git/repos"))).json()["repos"]
            assert repos == [{"id": rid("api"), "path": "api", "branch": "main"}]
            status = (await client.get(mcp(sandbox, "/api/git/status"), params={"repo": rid("api")})).json()
            assert {(f["status"], f["path"]) for f in status["files"]} == {
                (".M", "app.py"),
                ("??", "new.txt"),
            }
            assert status["branch"]["head"] == "main"
            diff = (
                await client.get(mcp(sandbox, "/api/git/diff"), params={"repo": rid("api"), "path": "app.py"})
            ).json()
            assert (
                "-print('hi')" in diff["diff"] and "+print('hello')" in diff["diff"] and not diff["truncated"]
            )

    async def test_diff_capped_at_64_kib(self, sandbox: Sandbox, repo: Path) -> None:
        (repo / "app.py").write_text("x = 1\n" * 30_000)
        async with httpx.AsyncClient(headers=sandbox.auth()) as client:
            diff = (await client.get(mcp(sandbox, "/api/git/diff"), params={"repo": rid("api")})).json()
        assert diff["truncated"] is True and len(diff["diff"].encode()) <= 64 * 1024

    async def test_symlink_outside_the_workspace_is_400(
        self, sandbox: Sandbox, repo: Path, tmp_path: Path
    ) -> None:
        outside = tmp_path / "outside-secret.txt"
        outside.write_text("secret\n")
        (repo / "link.txt").symlink_to(outside)
        (repo / "etc").symlink_to("/etc")
        async with httpx.AsyncClient(headers=sandbox.auth()) as client:
            for path in ("link.txt", "etc/passwd", "../../../etc/passwd", "/etc/passwd", ".git/config"):
                res = await client.get(
                    mcp(sandbox, "/api/git/diff"), params={"repo": rid("api"), "path": path}
                )
                assert res.status_code == 400, path
                assert res.json()["error"]["code"] == "invalid_path"

    async def test_repo_ids_outside_the_workspace_are_400(self, sandbox: Sandbox, repo: Path) -> None:
        (sandbox.home / "workspace" / "escape").symlink_to(sandbox.root)
        async with httpx.AsyncClient(headers=sandbox.auth()) as client:
            for bad in (rid("../.."), rid("/etc"), rid("escape"), "%%%", rid("missing")):
                res = await client.get(mcp(sandbox, "/api/git/status"), params={"repo": bad})
                assert res.status_code == 400, bad


class TestTerminal:
    async def test_terminal_runs_bash_in_the_workspace_and_resizes(self, sandbox: Sandbox) -> None:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(mcp(sandbox, "/api/terminal").replace("http", "ws", 1))
            assert refused.value.status == 401
            ws = await http.ws_connect(
                mcp(sandbox, "/api/terminal").replace("http", "ws", 1), headers=sandbox.auth()
            )
            await ws.send_str(json.dumps({"type": "resize", "cols": 77, "rows": 11}))
            await ws.send_str("echo TERM=$TERM; stty size; pwd\n")
            seen = ""

            async def read() -> None:
                nonlocal seen
                while "TERM=xterm-256color" not in seen or "11 77" not in seen or "/workspace" not in seen:
                    msg = await ws.receive(timeout=10)
                    assert msg.type == aiohttp.WSMsgType.TEXT, msg
                    seen += msg.data

            await asyncio.wait_for(read(), 20)
            await ws.close()


class TestLogsFollow:
    async def test_follow_streams_new_lines_as_they_are_written(self, sandbox: Sandbox) -> None:
        command = "echo one; sleep 1; echo two; sleep 300"
        async with httpx.AsyncClient(headers=sandbox.auth(), timeout=httpx.Timeout(10, read=20)) as client:
            await client.post(mcp(sandbox, "/api/services"), json={"name": "tick", "command": command})
            seen: list[str] = []
            async with client.stream("GET", mcp(sandbox, "/api/logs/tick"), params={"follow": "1"}) as res:
                async for line in res.aiter_lines():
                    if line.startswith("data: "):
                        seen.append(line[len("data: ") :])
                    if "two" in seen:
                        break
            assert seen.index("one") < seen.index("two")
