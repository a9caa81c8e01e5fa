"""The generated tool modules, run for real: esbuild syntax check, zod ⇄ msgspec agreement, and the
callback contract (§4.2) under Node 20 against a fake gateway."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from proliferate.agent_contract import OPENCODE_VERSION, ToolArgsInvalid, validate_tool_args
from proliferate.agent_contract.tools import (
    AUTOMATION_COMPLETE,
    SAVE_SERVICE_COMMANDS,
    SAVE_SNAPSHOT,
    TOOLS,
    VERIFY,
)
from proliferate.agent_contract.wrappers import render_tool_module
from proliferate.devkit.paths import esbuild_bin, opencode_base_dir

from .conftest import check_golden

CALLBACK_TOOLS = [t for t in TOOLS if t.executor == "gateway"]
TOKEN = "sbx_" + "t" * 40


def _node_ok() -> str | None:
    node = shutil.which("node")
    if node is None:
        return "node is not installed (Node.js 20+ is needed for the tool modules)"
    major = int(
        subprocess.run([node, "--version"], capture_output=True, text=True).stdout.lstrip("v").split(".")[0]
    )
    if major < 20:
        return f"node {major} is older than 20"
    if not esbuild_bin().exists():
        return "esbuild is missing: run `make esbuild`"
    if not (opencode_base_dir(OPENCODE_VERSION) / "node_modules" / "@opencode-ai" / "plugin").exists():
        return "the agent base layer is missing: run `make opencode-base`"
    return None


@pytest.fixture(scope="module")
def modules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every callback tool's module compiled by esbuild (the syntax check) into a dir Node can run."""
    reason = _node_ok()
    if reason:
        pytest.skip(reason=reason)
    out = tmp_path_factory.mktemp("tools")
    (out / "node_modules").symlink_to(opencode_base_dir(OPENCODE_VERSION) / "node_modules")
    shutil.copy(Path(__file__).parent / "node" / "harness.mjs", out / "harness.mjs")
    for spec in CALLBACK_TOOLS:
        src = out / f"{spec.name}.ts"
        src.write_text(render_tool_module(spec))
        subprocess.run(
            [
                str(esbuild_bin()),
                str(src),
                "--format=esm",
                "--platform=node",
                "--log-level=error",
                f"--outfile={out / (spec.name + '.mjs')}",
            ],
            check=True,
            capture_output=True,
        )
    yield out


def node(modules: Path, mode: str, data: Any) -> Any:
    (modules / "input.json").write_text(json.dumps(data))
    done = subprocess.run(
        ["node", "harness.mjs", mode, "input.json"], cwd=modules, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class TestGeneratedModules:
    def test_esbuild_syntax_check_passes_for_every_tool(self, modules: Path) -> None:
        assert sorted(p.stem for p in modules.glob("*.mjs") if p.stem != "harness") == sorted(
            t.name for t in CALLBACK_TOOLS
        )

    def test_golden_module(self) -> None:
        check_golden("save_service_commands.ts", render_tool_module(SAVE_SERVICE_COMMANDS))


CORPORA: dict[str, list[Any]] = {
    "verify": [
        {},
        {"folder": "evidence"},
        {"folder": "~/workspace/x"},
        {"folder": "../x"},
        {"folder": "/etc"},
        {"folder": "a/../../b"},
        {"folder": "x" * 501},
        {"folder": 3},
        {"other": 1},
        {"folder": "a\nb"},
    ],
    "save_snapshot": [
        {},
        {"message": "m"},
        {"message": "m" * 2000},
        {"message": "m" * 2001},
        {"message": None},
        {"msg": "x"},
    ],
    "save_service_commands": [
        {"commands": [{"name": "web", "command": "npm start"}]},
        {"commands": [{"name": "web", "command": "npm start", "cwd": "apps/web", "workspace_path": "api"}]},
        {"commands": []},
        {"commands": [{"name": f"s{i}", "command": "x"} for i in range(10)]},
        {"commands": [{"name": f"s{i}", "command": "x"} for i in range(11)]},
        {"commands": [{"name": "../x", "command": "x"}]},
        {"commands": [{"name": "a" * 100, "command": "x"}]},
        {"commands": [{"name": "a" * 101, "command": "x"}]},
        {"commands": [{"name": "web", "command": "x" * 1001}]},
        {"commands": [{"name": "web", "command": ""}]},
        {"commands": [{"name": "web", "command": "x", "cwd": "../up"}]},
        {"commands": [{"name": "web", "command": "x", "extra": True}]},
        {"commands": [{"name": "web"}]},
        {},
    ],
    "automation_complete": [
        {"run_id": str(uuid.uuid4()), "completion_id": "c", "outcome": "succeeded"},
        {
            "run_id": str(uuid.uuid4()),
            "completion_id": "c",
            "outcome": "needs_human",
            "citations": ["a"] * 50,
            "summary_markdown": "# done",
            "diff_ref": "d",
            "test_report_ref": "t",
            "side_effect_refs": ["pr"],
        },
        {"run_id": "not-a-uuid", "completion_id": "c", "outcome": "succeeded"},
        {"run_id": str(uuid.uuid4()), "completion_id": "c", "outcome": "done"},
        {"run_id": str(uuid.uuid4()), "completion_id": "", "outcome": "failed"},
        {"run_id": str(uuid.uuid4()), "completion_id": "c" * 201, "outcome": "failed"},
        {"run_id": str(uuid.uuid4()), "completion_id": "c", "outcome": "failed", "citations": ["a"] * 51},
        {"run_id": str(uuid.uuid4()), "completion_id": "c", "outcome": "failed", "citations": ["a" * 501]},
        {
            "run_id": str(uuid.uuid4()),
            "completion_id": "c",
            "outcome": "failed",
            "summary_markdown": "s" * 20_001,
        },
        {"run_id": str(uuid.uuid4()), "outcome": "failed"},
        {"run_id": str(uuid.uuid4()), "completion_id": "c", "outcome": "failed", "grant": "yes"},
    ],
}


def python_accepts(name: str, value: Any) -> bool:
    spec = next(t for t in CALLBACK_TOOLS if t.name == name)
    try:
        validate_tool_args(spec, json.dumps(value).encode())
    except ToolArgsInvalid:
        return False
    return True


class TestSchemaAgreement:
    def test_opencode_schema_and_gateway_validation_agree(self, modules: Path) -> None:
        """The zod schema OpenCode enforces and the gateway's msgspec validation accept the same corpus."""
        # OpenCode passes JSON-null optionals through zod as missing; the wire never carries null.
        corpora = {k: [v for v in vs if None not in v.values()] for k, vs in CORPORA.items()}
        zod = node(modules, "schema", corpora)
        for name, values in corpora.items():
            expected = [python_accepts(name, v) for v in values]
            assert zod[name] == expected, name
            assert True in expected and False in expected, f"{name}: corpus needs valid and invalid cases"


# --- the callback contract against a fake gateway -----------------------------------------------------


@dataclass
class Seen:
    session: str
    tool: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeGateway:
    """HTTP/1.1 by hand so a scenario can drop a connection mid-request. Keyed by session id."""

    script: dict[str, list[tuple[int, dict[str, str], Any] | None]]
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                _, path, _ = lines[0].split(" ")
                headers = {
                    k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                parts = path.split("/")  # /v1/sessions/<sid>/tools/<tool>
                self.seen.append(Seen(parts[3], parts[5], headers, body))
                step = self.script[parts[3]].pop(0)
                if step is None:  # drop the connection without an answer
                    writer.transport.abort()
                    return
                status, extra, payload = step
                data = json.dumps(payload).encode()
                reason = {200: "OK", 429: "Too Many Requests", 503: "Service Unavailable"}.get(
                    status, "Error"
                )
                head_out = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                head_out += "".join(f"{k}: {v}\r\n" for k, v in extra.items())
                writer.write(f"{head_out}Content-Length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def calls(self, session: str) -> list[Seen]:
        return [s for s in self.seen if s.session == session]


def ok(result: str) -> tuple[int, dict[str, str], Any]:
    return (200, {}, {"success": True, "result": result, "data": None, "error": None})


def err(status: int, code: str, extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    return (status, extra or {}, {"error": {"code": code, "message": f"{code} happened", "details": {}}})


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    gw = FakeGateway(script={})
    server = await asyncio.start_server(gw.handle, "127.0.0.1", 0)
    gw.port = server.sockets[0].getsockname()[1]
    async with server:
        yield gw


def env(gw: FakeGateway, session: str, **overrides: str | None) -> dict[str, str | None]:
    return {
        "PROLIFERATE_GATEWAY_URL": f"http://127.0.0.1:{gw.port}/",
        "PROLIFERATE_SESSION_ID": session,
        "SANDBOX_MCP_AUTH_TOKEN": TOKEN,
        **overrides,
    }


async def run_calls(modules: Path, calls: list[dict[str, Any]]) -> list[str]:
    return await asyncio.to_thread(node, modules, "call", calls)


REFUSAL = {"code": "tool_not_enabled", "message": "not in coding", "retryable": False}


class TestCallbackContract:
    async def test_reset_then_503_then_success_with_one_id(self, modules: Path, gateway: FakeGateway) -> None:
        gateway.script["flaky"] = [None, err(503, "unavailable"), ok("snapshot saved")]
        (out,) = await run_calls(
            modules, [{"tool": "save_snapshot", "env": env(gateway, "flaky"), "args": {"message": "m"}}]
        )
        assert out == "snapshot saved"
        calls = gateway.calls("flaky")
        assert len(calls) == 3
        assert len({c.body for c in calls}) == 1, "every attempt sends the identical body"
        body = json.loads(calls[0].body)
        assert body == {"tool_call_id": body["tool_call_id"], "args": {"message": "m"}}
        assert uuid.UUID(body["tool_call_id"]).version == 4
        for c in calls:
            assert c.tool == SAVE_SNAPSHOT.name
            assert c.headers["authorization"] == f"Bearer {TOKEN}"
            assert c.headers["x-proliferate-contract"] == "1"

    @pytest.mark.parametrize(
        ("status", "code"),
        [
            (400, "invalid_request"),
            (401, "unauthorized"),
            (403, "forbidden"),
            (404, "unknown_tool"),
            (409, "session_ended"),
            (500, "internal"),
        ],
    )
    async def test_other_errors_are_not_retried(
        self, modules: Path, gateway: FakeGateway, status: int, code: str
    ) -> None:
        session = f"s{status}"
        gateway.script[session] = [err(status, code), ok("must not be reached")]
        (out,) = await run_calls(modules, [{"tool": "verify", "env": env(gateway, session), "args": {}}])
        assert out == f"ERROR[{code}]: {code} happened"
        assert len(gateway.calls(session)) == 1

    async def test_refusal_and_rate_limits_and_misconfiguration(
        self, modules: Path, gateway: FakeGateway
    ) -> None:
        run_id = str(uuid.uuid4())
        gateway.script.update(
            refused=[(200, {}, {"success": False, "result": "", "error": REFUSAL})],
            slow=[err(429, "rate_limited", {"Retry-After": "1"}), ok("verified 2 files")],
            long=[err(429, "rate_limited", {"Retry-After": "60"}), ok("must not be reached")],
            complete=[ok("run completed")],
        )
        completion = {
            "run_id": run_id,
            "completion_id": f"run:{run_id}:completion:v1",
            "outcome": "succeeded",
        }
        outs = await run_calls(
            modules,
            [
                {
                    "tool": "save_service_commands",
                    "env": env(gateway, "refused"),
                    "args": {"commands": [{"name": "web", "command": "npm start"}]},
                },
                {"tool": "verify", "env": env(gateway, "slow"), "args": {}},
                {"tool": "verify", "env": env(gateway, "long"), "args": {}},
                {"tool": "automation_complete", "env": env(gateway, "complete"), "args": completion},
                {"tool": "verify", "env": env(gateway, "unset", SANDBOX_MCP_AUTH_TOKEN=None), "args": {}},
            ],
        )
        assert outs[0] == "ERROR[tool_not_enabled]: not in coding"
        assert outs[1] == "verified 2 files" and len(gateway.calls("slow")) == 2
        assert outs[2] == "ERROR[rate_limited]: rate_limited happened" and len(gateway.calls("long")) == 1
        assert outs[3] == "run completed"
        assert json.loads(gateway.calls("complete")[0].body)["tool_call_id"] == completion["completion_id"]
        assert gateway.calls("complete")[0].tool == AUTOMATION_COMPLETE.name
        assert outs[4].startswith("ERROR[misconfigured]:") and gateway.calls("unset") == []


def test_verify_module_uses_only_its_own_name() -> None:
    text = render_tool_module(VERIFY)
    assert 'const TOOL_NAME = "verify"' in text and "automation_complete" not in text
