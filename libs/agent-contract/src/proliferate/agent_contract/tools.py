"""The tool catalog (agent-contract.md §2.3) and strict argument validation.

Each platform tool's arguments are one `msgspec.Struct`; the gateway's validation, the OpenCode
argument schema of the generated wrapper (`wrappers.py`) and the agent-visible descriptions all come
from it, so they cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Annotated, Any, Literal

import msgspec
from proliferate.agent_contract.types import (
    CONTRACT_VERSION,
    PROMPT_MODES,
    PromptMode,
    ToolError,
    ToolResult,
    ToolSpec,
)

# A path relative to the repo dir (or under ~/workspace): not absolute, no `..` segment, one line.
RELATIVE_PATH_PATTERN = r"^(?:~/workspace(?:/|$)|(?![/~]))(?!.*(?:^|/)\.\.(?:/|$))[^\x00\r\n]*$"
SERVICE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"

CALLBACK_BODY_MAX_BYTES = 256 * 1024
RESULT_MAX_CHARS = 16 * 1024
DATA_MAX_BYTES = 64 * 1024
TRUNCATED_MARKER = "...[truncated]"

RelativePath = Annotated[str, msgspec.Meta(max_length=500, pattern=RELATIVE_PATH_PATTERN)]
Ref = Annotated[str, msgspec.Meta(max_length=500)]


class VerifyArgs(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    folder: (
        Annotated[
            RelativePath,
            msgspec.Meta(
                description="Evidence folder, relative to the repo (default .proliferate/.verification)"
            ),
        ]
        | None
    ) = None


class SaveSnapshotArgs(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    message: (
        Annotated[str, msgspec.Meta(max_length=2000, description="What this snapshot contains")] | None
    ) = None


class ServiceCommandArgs(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: Annotated[
        str, msgspec.Meta(pattern=SERVICE_NAME_PATTERN, description="Service name (letters, digits, _.-)")
    ]
    command: Annotated[
        str, msgspec.Meta(min_length=1, max_length=1000, description="Shell command that starts it")
    ]
    cwd: Annotated[RelativePath, msgspec.Meta(description="Working directory, relative")] | None = None
    workspace_path: Annotated[str, msgspec.Meta(max_length=500, description="Repo workspace path")] | None = (
        None
    )


class SaveServiceCommandsArgs(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    commands: Annotated[
        list[ServiceCommandArgs],
        msgspec.Meta(
            min_length=1, max_length=10, description="The commands that start the project's services"
        ),
    ]


class AutomationCompleteArgs(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    run_id: Annotated[uuid.UUID, msgspec.Meta(description="The run id from the task message")]
    completion_id: Annotated[
        str, msgspec.Meta(min_length=1, max_length=200, description="The completion id from the task message")
    ]
    outcome: Annotated[
        Literal["succeeded", "failed", "needs_human"], msgspec.Meta(description="How the run ended")
    ]
    summary_markdown: (
        Annotated[str, msgspec.Meta(max_length=20000, description="Summary for people")] | None
    ) = None
    citations: Annotated[list[Ref], msgspec.Meta(max_length=50, description="Links or file refs")] | None = (
        None
    )
    diff_ref: Annotated[Ref, msgspec.Meta(description="Reference to the diff")] | None = None
    test_report_ref: Annotated[Ref, msgspec.Meta(description="Reference to the test report")] | None = None
    side_effect_refs: (
        Annotated[list[Ref], msgspec.Meta(max_length=50, description="External side effects (PRs, issues)")]
        | None
    ) = None


_CALLBACK_LIMITS = {
    "body_bytes": CALLBACK_BODY_MAX_BYTES,
    "result_chars": RESULT_MAX_CHARS,
    "data_bytes": DATA_MAX_BYTES,
}

VERIFY = ToolSpec(
    name="verify",
    aliases=(),
    modes=PROMPT_MODES,
    executor="gateway",
    args=VerifyArgs,
    description_md=(
        "Upload verification evidence (screenshots, test logs, command output) so the user can see "
        "that the work "
        "really works. First save the evidence files into `.proliferate/.verification/` (or pass "
        "another `folder`, "
        "relative to the repository), then call this tool. An empty folder succeeds with a hint."
    ),
    limits=_CALLBACK_LIMITS,
)
SAVE_SNAPSHOT = ToolSpec(
    name="save_snapshot",
    aliases=(),
    modes=PROMPT_MODES,
    executor="gateway",
    args=SaveSnapshotArgs,
    description_md=(
        "Save a snapshot of this sandbox's filesystem. In a setup session it becomes the "
        "configuration's snapshot "
        "that future sessions start from; otherwise it is a snapshot of this session. Secret files are never "
        "included. The sandbox freezes briefly while the snapshot is taken."
    ),
    limits=_CALLBACK_LIMITS,
)
SAVE_SERVICE_COMMANDS = ToolSpec(
    name="save_service_commands",
    aliases=(),
    modes=("setup",),
    executor="gateway",
    args=SaveServiceCommandsArgs,
    description_md=(
        "Store the commands that start this project's services (dev servers, workers, databases) on the "
        "configuration, replacing the previous ones (1 to 10 commands). Call it once the services "
        "really run, and "
        "always before `save_snapshot`."
    ),
    limits=_CALLBACK_LIMITS,
)
AUTOMATION_COMPLETE = ToolSpec(
    name="automation_complete",
    aliases=("automation.complete",),
    modes=("automation",),
    executor="gateway",
    args=AutomationCompleteArgs,
    description_md=(
        "Finish this automation run. Pass the `run_id` and `completion_id` from the task message, "
        "the `outcome` "
        "(`succeeded`, `failed`, or `needs_human` when you are blocked), a markdown summary and "
        "citations. You must "
        "call it exactly once before you stop; the session ends afterwards."
    ),
    limits=_CALLBACK_LIMITS,
    arg_aliases={"runId": "run_id", "completionId": "completion_id"},
    id_arg="completion_id",
)
ACTIONS_CLI = ToolSpec(
    name="proliferate actions",
    aliases=(),
    modes=PROMPT_MODES,
    executor="cli",
    args=None,
    description_md="`proliferate actions list|guide|run`: external services through the platform's actions.",
    limits={},
)
SERVICES_CLI = ToolSpec(
    name="proliferate services",
    aliases=(),
    modes=PROMPT_MODES,
    executor="cli",
    args=None,
    description_md="`proliferate services …`: long-running processes and the preview port.",
    limits={},
)

TOOLS: tuple[ToolSpec, ...] = (
    VERIFY,
    SAVE_SNAPSHOT,
    SAVE_SERVICE_COMMANDS,
    AUTOMATION_COMPLETE,
    ACTIONS_CLI,
    SERVICES_CLI,
)
_BY_NAME: dict[str, ToolSpec] = {alias: t for t in TOOLS for alias in (t.name, *t.aliases)}


def tools_for_mode(mode: PromptMode, executor: str | None = "gateway") -> list[ToolSpec]:
    """The tools injected for a mode, in catalog order (platform tools by default; `None` = all)."""
    return [t for t in TOOLS if mode in t.modes and (executor is None or t.executor == executor)]


def resolve_tool(name: str) -> ToolSpec | None:
    """The tool an agent-visible name or wire alias (`automation.complete`) refers to."""
    return _BY_NAME.get(name)


class ToolArgsInvalid(Exception):
    """Arguments the tool refuses; the gateway answers `success=false, error.code=invalid_arguments`."""

    def __init__(self, issues: list[dict[str, str]], code: str = "invalid_arguments") -> None:
        self.code = code
        self.issues = issues
        super().__init__("; ".join(f"{i['path']}: {i['message']}" for i in issues))


def validate_tool_args(tool: ToolSpec, raw: bytes | str | dict[str, Any]) -> msgspec.Struct:
    """Strictly decode a tool's arguments; unknown fields are all listed, aliases are folded in."""
    if tool.args is None:
        raise ToolArgsInvalid(
            [{"path": "$", "message": f"{tool.name} is not a callback tool"}], "tool_not_callable"
        )
    data = _as_object(raw)
    data = _fold_aliases(tool, data)
    known = set(tool.args.__struct_fields__)
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        raise ToolArgsInvalid([{"path": f"$.{k}", "message": "unknown field"} for k in unknown])
    try:
        return msgspec.convert(data, tool.args, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        path = message.rsplit(" - at `", 1)[1].rstrip("`") if " - at `" in message else "$"
        raise ToolArgsInvalid([{"path": path, "message": message.split(" - at `", 1)[0]}]) from None


def _as_object(raw: bytes | str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(raw, dict):
        return dict(raw)
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ToolArgsInvalid([{"path": "$", "message": f"invalid JSON: {exc}"}]) from None
    if not isinstance(data, dict):
        raise ToolArgsInvalid([{"path": "$", "message": "arguments must be a JSON object"}])
    return data


def _fold_aliases(tool: ToolSpec, data: dict[str, Any]) -> dict[str, Any]:
    for alias, canonical in tool.arg_aliases.items():
        if alias in data:
            if canonical in data:
                raise ToolArgsInvalid(
                    [{"path": f"$.{alias}", "message": f"both {alias} and {canonical} given"}]
                )
            data[canonical] = data.pop(alias)
    return data


def make_tool_result(
    success: bool,
    result: str,
    data: dict[str, Any] | None = None,
    error: ToolError | None = None,
) -> ToolResult:
    """A `ToolResult` within the limits: result text truncated with a marker, oversized data refused."""
    if len(result) > RESULT_MAX_CHARS:
        result = result[: RESULT_MAX_CHARS - len(TRUNCATED_MARKER)] + TRUNCATED_MARKER
    if data is not None and len(msgspec.json.encode(data)) > DATA_MAX_BYTES:
        raise ValueError(f"tool result data exceeds {DATA_MAX_BYTES} bytes")
    return ToolResult(success=success, result=result, data=data, error=error)


def args_hash(args: msgspec.Struct) -> str:
    """The idempotency record's args hash: sha256 of the validated args as canonical JSON, so a retry
    spelled with aliases (`runId`) or reordered keys is the same call and a real change is a conflict."""
    canonical = json.dumps(
        msgspec.to_builtins(args), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def is_supported_contract_version(header: str | int | None, current: int = CONTRACT_VERSION) -> bool:
    """`X-Proliferate-Contract`: the current and the previous version are accepted (rolling deploys)."""
    try:
        version = int(header) if header is not None else current
    except (TypeError, ValueError):
        return False
    return version in {current, current - 1} and version >= 1
