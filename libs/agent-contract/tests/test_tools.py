from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
from proliferate.agent_contract import (
    ToolArgsInvalid,
    args_hash,
    is_supported_contract_version,
    make_tool_result,
    resolve_tool,
    tools_for_mode,
    validate_tool_args,
)
from proliferate.agent_contract.tools import (
    AUTOMATION_COMPLETE,
    SAVE_SERVICE_COMMANDS,
    SAVE_SNAPSHOT,
    VERIFY,
    AutomationCompleteArgs,
)


def refused(tool: Any, args: Any) -> ToolArgsInvalid:
    raw = args if isinstance(args, bytes) else msgspec.json.encode(args)
    with pytest.raises(ToolArgsInvalid) as info:
        validate_tool_args(tool, raw)
    assert info.value.code == "invalid_arguments"
    return info.value


def cmd(**overrides: Any) -> dict[str, Any]:
    return {"name": "web", "command": "npm run dev", **overrides}


class TestToolsForMode:
    @pytest.mark.parametrize(
        ("mode", "names"),
        [
            ("setup", ["verify", "save_snapshot", "save_service_commands"]),
            ("coding", ["verify", "save_snapshot"]),
            ("scratch", ["verify", "save_snapshot"]),
            ("automation", ["verify", "save_snapshot", "automation_complete"]),
        ],
    )
    def test_platform_tools_per_mode(self, mode: str, names: list[str]) -> None:
        assert [t.name for t in tools_for_mode(mode)] == names  # type: ignore[arg-type]

    def test_cli_tools_in_every_mode(self) -> None:
        for mode in ("setup", "coding", "automation", "scratch"):
            assert {t.name for t in tools_for_mode(mode, executor="cli")} == {  # type: ignore[arg-type]
                "proliferate actions",
                "proliferate services",
            }

    def test_resolve_alias_and_unknown(self) -> None:
        assert resolve_tool("automation.complete") is AUTOMATION_COMPLETE
        assert resolve_tool("automation_complete") is AUTOMATION_COMPLETE
        assert resolve_tool("request_env_variables") is None
        assert resolve_tool("save_env_files") is None


class TestSaveServiceCommandsArgs:
    def test_valid(self) -> None:
        args = validate_tool_args(
            SAVE_SERVICE_COMMANDS, msgspec.json.encode({"commands": [cmd(cwd="apps/web")]})
        )
        assert args.commands[0].cwd == "apps/web"  # type: ignore[attr-defined]

    def test_zero_commands(self) -> None:
        refused(SAVE_SERVICE_COMMANDS, {"commands": []})

    def test_eleven_commands(self) -> None:
        refused(SAVE_SERVICE_COMMANDS, {"commands": [cmd(name=f"s{i}") for i in range(11)]})

    def test_name_with_traversal(self) -> None:
        err = refused(SAVE_SERVICE_COMMANDS, {"commands": [cmd(name="../x")]})
        assert err.issues[0]["path"] == "$.commands[0].name"

    def test_1001_char_command(self) -> None:
        refused(SAVE_SERVICE_COMMANDS, {"commands": [cmd(command="x" * 1001)]})
        validate_tool_args(
            SAVE_SERVICE_COMMANDS, msgspec.json.encode({"commands": [cmd(command="x" * 1000)]})
        )

    @pytest.mark.parametrize("cwd", ["../up", "a/../../b", "/etc", "a/..", ".."])
    def test_cwd_with_dotdot_or_absolute(self, cwd: str) -> None:
        refused(SAVE_SERVICE_COMMANDS, {"commands": [cmd(cwd=cwd)]})

    def test_unknown_top_level_fields_all_listed(self) -> None:
        err = refused(SAVE_SERVICE_COMMANDS, {"commands": [cmd()], "zeta": 1, "alpha": 2})
        assert [i["path"] for i in err.issues] == ["$.alpha", "$.zeta"]

    def test_unknown_nested_field(self) -> None:
        refused(SAVE_SERVICE_COMMANDS, {"commands": [cmd(env={"A": "b"})]})

    def test_bad_json_and_non_object(self) -> None:
        refused(SAVE_SERVICE_COMMANDS, b"{not json")
        refused(SAVE_SERVICE_COMMANDS, b"[1, 2]")


class TestAutomationCompleteArgs:
    def base(self, **overrides: Any) -> dict[str, Any]:
        return {
            "run_id": str(uuid.uuid4()),
            "completion_id": "run:x:completion:v1",
            "outcome": "succeeded",
            **overrides,
        }

    def test_non_uuid_run_id(self) -> None:
        refused(AUTOMATION_COMPLETE, self.base(run_id="run-42"))

    def test_outcome_done(self) -> None:
        refused(AUTOMATION_COMPLETE, self.base(outcome="done"))

    def test_51_citations(self) -> None:
        refused(AUTOMATION_COMPLETE, self.base(citations=["c"] * 51))
        validate_tool_args(AUTOMATION_COMPLETE, msgspec.json.encode(self.base(citations=["c"] * 50)))

    def test_camel_case_aliases(self) -> None:
        run_id = uuid.uuid4()
        args = validate_tool_args(
            AUTOMATION_COMPLETE,
            msgspec.json.encode({"runId": str(run_id), "completionId": "c1", "outcome": "needs_human"}),
        )
        assert isinstance(args, AutomationCompleteArgs)
        assert (args.run_id, args.completion_id, args.outcome) == (run_id, "c1", "needs_human")

    def test_alias_and_canonical_together_refused(self) -> None:
        refused(AUTOMATION_COMPLETE, self.base(runId=str(uuid.uuid4())))

    def test_empty_completion_id(self) -> None:
        refused(AUTOMATION_COMPLETE, self.base(completion_id=""))


class TestOtherArgs:
    def test_verify_folder(self) -> None:
        validate_tool_args(VERIFY, b"{}")
        validate_tool_args(VERIFY, b'{"folder": "~/workspace/evidence"}')
        refused(VERIFY, {"folder": "../../etc"})
        refused(VERIFY, {"folder": "/etc"})
        refused(VERIFY, {"folder": "~/.ssh"})

    def test_save_snapshot_message_limit(self) -> None:
        validate_tool_args(SAVE_SNAPSHOT, msgspec.json.encode({"message": "m" * 2000}))
        refused(SAVE_SNAPSHOT, {"message": "m" * 2001})

    def test_cli_tool_is_not_callable(self) -> None:
        with pytest.raises(ToolArgsInvalid) as info:
            validate_tool_args(resolve_tool("proliferate actions"), b"{}")  # type: ignore[arg-type]
        assert info.value.code == "tool_not_callable"


class TestToolResult:
    def test_result_truncated_with_marker(self) -> None:
        result = make_tool_result(True, "r" * 20_000)
        assert len(result.result) == 16 * 1024 and result.result.endswith("...[truncated]")

    def test_oversized_data_refused(self) -> None:
        with pytest.raises(ValueError, match="65536"):
            make_tool_result(True, "ok", data={"blob": "x" * 70_000})


class TestGatewayHelpers:
    def test_args_hash_ignores_spelling_and_order_but_not_values(self) -> None:
        run_id = str(uuid.uuid4())
        a = validate_tool_args(
            AUTOMATION_COMPLETE, {"runId": run_id, "completionId": "c", "outcome": "failed"}
        )
        b = validate_tool_args(
            AUTOMATION_COMPLETE, {"outcome": "failed", "completion_id": "c", "run_id": run_id}
        )
        c = validate_tool_args(
            AUTOMATION_COMPLETE, {"outcome": "succeeded", "completion_id": "c", "run_id": run_id}
        )
        assert args_hash(a) == args_hash(b) != args_hash(c)

    @pytest.mark.parametrize(
        ("header", "ok"), [("1", True), (1, True), (None, True), ("0", False), ("99", False), ("x", False)]
    )
    def test_contract_versions(self, header: object, ok: bool) -> None:
        assert is_supported_contract_version(header) is ok  # type: ignore[arg-type]

    def test_previous_version_accepted_during_a_rolling_deploy(self) -> None:
        assert is_supported_contract_version("1", current=2) and is_supported_contract_version("2", current=2)
        assert not is_supported_contract_version("3", current=2)
