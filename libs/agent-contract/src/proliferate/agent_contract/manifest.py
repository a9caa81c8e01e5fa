"""The capability manifest (agent-contract.md §2.4): every file, env name and process the agent needs.

`build_manifest` is pure: files in path order, UTF-8 with `\\n`, JSON with sorted keys, so the same
inputs give the same bytes and digest in any process. The base layer (plugin + pinned
`@opencode-ai/plugin` package.json) is what base snapshots bake in; `base_layer_digest` feeds the base
snapshot version key. Its `node_modules/` comes from the host tool cache (`make opencode-base`), not
from the manifest.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from proliferate.agent_contract.opencode_config import INSTRUCTIONS_PATH, PLUGIN_PATH, render_opencode_config
from proliferate.agent_contract.tools import tools_for_mode
from proliferate.agent_contract.types import CapabilityManifest, ManifestFile, ManifestInput, ProcessSpec
from proliferate.agent_contract.wrappers import render_tool_guidance, render_tool_module

# Pinned with OpenCode itself (Makefile OPENCODE_VERSION): the tool modules import it.
OPENCODE_VERSION = "1.18.33"
PLUGIN_PACKAGE = "@opencode-ai/plugin"

CONFIG_DIR = ".config/opencode"
OPENCODE_JSON_PATH = f"{CONFIG_DIR}/opencode.json"
PACKAGE_JSON_PATH = f"{CONFIG_DIR}/package.json"
TOOLS_DIR = f"{CONFIG_DIR}/tools"
ACTIONS_GUIDE_PATH = ".proliferate/actions-guide.md"
TRIGGER_CONTEXT_PATH = ".proliferate/trigger-context.json"
MANIFEST_JSON_PATH = ".proliferate/manifest.json"

# Values are supplied per boot by the sandbox service (§4.4); the manifest carries names only.
ENV_NAMES: tuple[str, ...] = (
    "PROLIFERATE_GATEWAY_URL",
    "PROLIFERATE_SESSION_ID",
    "PROLIFERATE_SANDBOX_ID",
    "PROLIFERATE_CONTRACT_VERSION",
    "SANDBOX_MCP_AUTH_TOKEN",
    "SESSION_ID",
    "WORKSPACE_DIR",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS",
    "GIT_TOKEN",
    "GH_TOKEN",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
)

PLUGIN_SOURCE = """\
// Proliferate's OpenCode plugin (base layer). It registers no hooks: the gateway follows the agent
// through its event stream, and platform tools live in ../tools/.
export const ProliferatePlugin = async () => ({})
"""

ACTIONS_GUIDE = """\
# Actions: reaching external services from this sandbox

External services (issue trackers, chat, monitoring, cloud APIs) are reached only through the
platform's actions, with the `proliferate` command. Credentials are resolved on the server: you never
see them and must never ask the user for API keys of connected integrations.

1. `proliferate actions list` — the action sources and actions this session may use (JSON).
2. `proliferate actions guide --source <source>` — how to use one source, with examples.
3. `proliferate actions run --source <source> --action <action> --params '<json>'` — run one action.

Some actions need a person's approval. The command then prints `Waiting for approval...` and waits
until someone approves or denies it in Proliferate; approved actions print their result, denied or
expired ones exit with status 1 and the reason. Report a denial to the user instead of working
around it. Exit status 2 means the command itself was wrong (a missing flag, invalid JSON).
"""


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def base_layer_files() -> list[ManifestFile]:
    """The base layer: the same for every session, baked into base snapshots and the local tool cache."""
    package = {"private": True, "dependencies": {PLUGIN_PACKAGE: OPENCODE_VERSION}}
    return [
        ManifestFile(PACKAGE_JSON_PATH, 0o644, "base", _json_bytes(package)),
        ManifestFile(PLUGIN_PATH, 0o644, "base", PLUGIN_SOURCE.encode()),
    ]


def _sandbox_notes(inp: ManifestInput) -> str:
    home = inp.home_dir.rstrip("/")
    lines = [
        "## Sandbox notes",
        "",
        f"- Home: `{home}`; workspace: `{home}/workspace`; the repository you work in: `{inp.repo_dir}`.",
        "- Start servers and other long-running processes with `proliferate services start --name <name> "
        "--command '<command>'`; their logs are in `/tmp/proliferate/logs/<name>.log` and "
        "`proliferate services "
        "logs --name <name>`.",
        "- `proliferate services expose --port <port>` chooses which port the user's preview shows.",
        "- `.proliferate/` is yours for evidence and previews; it is excluded from git.",
    ]
    if inp.caps.languages:
        lines.append("- Toolchains: " + ", ".join(inp.caps.languages) + ".")
    return "\n".join(lines) + "\n"


def _session_files(inp: ManifestInput) -> list[ManifestFile]:
    files = [
        ManifestFile(
            OPENCODE_JSON_PATH,
            0o644,
            "session",
            render_opencode_config(inp.agent, inp.llm_base_url, inp.ports, inp.caps, home_dir=inp.home_dir),
        ),
        ManifestFile(
            INSTRUCTIONS_PATH,
            0o644,
            "session",
            (inp.prompt.rstrip("\n") + "\n\n" + _sandbox_notes(inp)).encode(),
        ),
        ManifestFile(ACTIONS_GUIDE_PATH, 0o644, "session", ACTIONS_GUIDE.encode()),
    ]
    for spec in tools_for_mode(inp.mode):
        files.append(
            ManifestFile(f"{TOOLS_DIR}/{spec.name}.ts", 0o644, "session", render_tool_module(spec).encode())
        )
        files.append(
            ManifestFile(
                f"{TOOLS_DIR}/{spec.name}.txt", 0o644, "session", render_tool_guidance(spec).encode()
            )
        )
    if inp.trigger_context is not None:
        files.append(ManifestFile(TRIGGER_CONTEXT_PATH, 0o600, "session", inp.trigger_context))
    return files


def agent_process(inp: ManifestInput) -> ProcessSpec:
    """OpenCode on loopback, in the repo dir, with downloads and telemetry-like fetches off."""
    home = inp.home_dir.rstrip("/")
    return ProcessSpec(
        name="agent",
        argv=("opencode", "serve", "--port", str(inp.ports.agent), "--hostname", "127.0.0.1"),
        restart="always",
        ready_http_path="/session",
        cwd=inp.repo_dir,
        env={
            "OPENCODE_DISABLE_AUTOUPDATE": "true",
            "OPENCODE_DISABLE_DEFAULT_PLUGINS": "true",
            "OPENCODE_DISABLE_LSP_DOWNLOAD": "true",
            "OPENCODE_DISABLE_MODELS_FETCH": "true",
            "OPENCODE_DISABLE_SHARE": "true",
            "XDG_CACHE_HOME": f"{home}/.cache",
            "XDG_CONFIG_HOME": f"{home}/.config",
            "XDG_DATA_HOME": f"{home}/.local/share",
            "XDG_STATE_HOME": f"{home}/.local/state",
        },
    )


def _digest(contract_version: int, mode: str, files: list[ManifestFile], processes: list[ProcessSpec]) -> str:
    doc = {
        "contract_version": contract_version,
        "mode": mode,
        "files": [
            {
                "path": f.path,
                "mode_bits": f.mode_bits,
                "layer": f.layer,
                "sha256": hashlib.sha256(f.content).hexdigest(),
            }
            for f in files
        ],
        "env_names": list(ENV_NAMES),
        "processes": [
            {
                "name": p.name,
                "argv": list(p.argv),
                "restart": p.restart,
                "ready_http_path": p.ready_http_path,
                "cwd": p.cwd,
                "env": p.env,
            }
            for p in processes
        ],
    }
    return "sha256:" + hashlib.sha256(_canonical(doc)).hexdigest()


def build_manifest(inp: ManifestInput) -> CapabilityManifest:
    """The files, env names and processes of a session's agent; `.proliferate/manifest.json` lists them."""
    files = sorted([*base_layer_files(), *_session_files(inp)], key=lambda f: f.path)
    processes = [agent_process(inp)]
    digest = _digest(inp.contract_version, inp.mode, files, processes)
    managed = sorted([*(f.path for f in files), MANIFEST_JSON_PATH])
    index = {"contract_version": inp.contract_version, "digest": digest, "managed_paths": managed}
    files = sorted(
        [*files, ManifestFile(MANIFEST_JSON_PATH, 0o644, "session", _json_bytes(index))], key=lambda f: f.path
    )
    return CapabilityManifest(
        contract_version=inp.contract_version,
        mode=inp.mode,
        files=tuple(files),
        env_names=ENV_NAMES,
        processes=tuple(processes),
        digest=digest,
    )


def base_layer_digest(m: CapabilityManifest) -> str:
    """Hash of the base-layer files only: a prompt or model change never invalidates base snapshots."""
    doc = [
        {"path": f.path, "mode_bits": f.mode_bits, "sha256": hashlib.sha256(f.content).hexdigest()}
        for f in m.files
        if f.layer == "base"
    ]
    return hashlib.sha256(
        _canonical({"base_layer": doc, "package": f"{PLUGIN_PACKAGE}@{OPENCODE_VERSION}"})
    ).hexdigest()


def stale_managed_paths(previous_manifest_json: bytes, m: CapabilityManifest) -> list[str]:
    """Paths the previous boot's manifest managed that this one does not (to delete on this boot)."""
    try:
        previous = json.loads(previous_manifest_json)
        paths = previous.get("managed_paths", []) if isinstance(previous, dict) else []
    except ValueError:
        return []
    current = {f.path for f in m.files}
    return sorted(
        p
        for p in paths
        if isinstance(p, str) and p not in current and not p.startswith("/") and ".." not in p.split("/")
    )
