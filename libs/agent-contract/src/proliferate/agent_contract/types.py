"""The contract's data types (agent-contract.md §2.1). Frozen structs: every input of a render is a value."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import msgspec

CONTRACT_VERSION = 1

PromptMode = Literal["setup", "coding", "automation", "scratch"]
PROMPT_MODES: tuple[PromptMode, ...] = ("setup", "coding", "automation", "scratch")
SessionType = Literal["setup", "coding"]
ClientType = Literal["web", "slack", "automation", "api"]
ReasoningEffort = Literal["quick", "normal", "deep"]
Executor = Literal["gateway", "cli"]
Layer = Literal["base", "session"]
RestartPolicy = Literal["always", "on_failure", "never"]


class SessionFacts(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the gateway knows about a session when it picks the prompt mode."""

    session_type: SessionType
    client_type: ClientType
    repo_names: tuple[str, ...] = ()
    run_id: uuid.UUID | None = None
    custom_system_prompt: str | None = None


class AgentConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    agent_type: Literal["opencode"] = "opencode"
    model_id: str = "claude-sonnet-4.6"
    reasoning_effort: ReasoningEffort = "normal"


class Capabilities(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What this sandbox really offers the agent; prompt fragments never promise more."""

    docker: bool = False
    playwright_mcp: bool = False
    vscode: bool = False
    languages: tuple[str, ...] = ()


class Ports(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """In-sandbox ports (sandbox-provider.md §2); local sandboxes on the host network use their port block."""

    router: int = 20000
    agent: int = 4096
    api: int = 4000
    vscode: int = 3901


class ToolError(msgspec.Struct, frozen=True):
    code: str
    message: str
    retryable: bool = False


class ToolResult(msgspec.Struct, frozen=True):
    """What a platform tool returns to the agent (the gateway builds it with `make_tool_result`)."""

    success: bool
    result: str
    data: dict[str, Any] | None = None
    error: ToolError | None = None


class ToolCall(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of a tool callback (§4.2)."""

    tool_call_id: str
    args: dict[str, Any]


class ToolSpec(msgspec.Struct, frozen=True):
    """One platform or CLI tool. Wrappers, descriptions and gateway validation are generated from `args`."""

    name: str
    aliases: tuple[str, ...]
    modes: tuple[PromptMode, ...]
    executor: Executor
    args: type[msgspec.Struct] | None
    description_md: str
    limits: dict[str, int]
    arg_aliases: dict[str, str] = {}
    id_arg: str | None = None  # the argument used as `tool_call_id` (automation_complete: completion_id)


class ManifestFile(msgspec.Struct, frozen=True):
    path: str  # relative to the sandbox home
    mode_bits: int
    layer: Layer
    content: bytes


class ProcessSpec(msgspec.Struct, frozen=True):
    name: str
    argv: tuple[str, ...]
    restart: RestartPolicy
    ready_http_path: str | None = None
    cwd: str | None = None
    env: dict[str, str] = {}  # fixed, non-secret settings of this process only


class CapabilityManifest(msgspec.Struct, frozen=True):
    contract_version: int
    mode: PromptMode
    files: tuple[ManifestFile, ...]
    env_names: tuple[str, ...]
    processes: tuple[ProcessSpec, ...]
    digest: str

    def file(self, path: str) -> ManifestFile | None:
        return next((f for f in self.files if f.path == path), None)


class ManifestInput(msgspec.Struct, frozen=True):
    mode: PromptMode
    home_dir: str
    repo_dir: str
    prompt: str
    llm_base_url: str
    agent: AgentConfig = AgentConfig()
    ports: Ports = Ports()
    caps: Capabilities = Capabilities()
    trigger_context: bytes | None = None
    contract_version: int = CONTRACT_VERSION
