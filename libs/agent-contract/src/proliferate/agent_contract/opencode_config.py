"""`opencode.json` (agent-contract.md §4.5): the agent reaches LLMs only through the llm_proxy.

The only credential reference is `{env:ANTHROPIC_API_KEY}` (the session's virtual key), which OpenCode
substitutes from its environment. `enabled_providers` keeps OpenCode's own hosted providers out, so
no request can bypass the proxy.
"""

from __future__ import annotations

import json
from typing import Any

from proliferate.agent_contract.models import get_model, list_models
from proliferate.agent_contract.types import AgentConfig, Capabilities, Ports

API_KEY_REF = "{env:ANTHROPIC_API_KEY}"
CONFIG_SCHEMA = "https://opencode.ai/config.json"
PLUGIN_PATH = ".config/opencode/plugin/proliferate.mjs"
INSTRUCTIONS_PATH = ".config/opencode/proliferate/instructions.md"

_THINKING_BUDGET = {"quick": 0, "normal": 0, "deep": 16000}
_OPENAI_EFFORT = {"quick": "low", "normal": None, "deep": "high"}


def normalize_llm_base_url(url: str) -> str:
    """Trailing `/` trimmed and exactly one `/v1`, the shape llm_proxy hands out."""
    base = url.strip().rstrip("/")
    while base.endswith("/v1"):
        base = base[: -len("/v1")].rstrip("/")
    return base + "/v1"


def _model_options(agent: AgentConfig) -> tuple[str, dict[str, Any]]:
    """Per-model options for the reasoning effort of reasoning models (nothing at `normal`)."""
    model = get_model(agent.model_id)
    if not model.reasoning:
        return model.opencode_id, {}
    if model.opencode_id.startswith("anthropic/"):
        budget = _THINKING_BUDGET[agent.reasoning_effort]
        return model.opencode_id, (
            {"thinking": {"type": "enabled", "budgetTokens": budget}} if budget else {}
        )
    effort = _OPENAI_EFFORT[agent.reasoning_effort]
    return model.opencode_id, ({"reasoningEffort": effort} if effort else {})


def opencode_config(
    agent: AgentConfig, llm_base_url: str, ports: Ports, caps: Capabilities, *, home_dir: str
) -> dict[str, Any]:
    base_url = normalize_llm_base_url(llm_base_url)
    home = home_dir.rstrip("/")
    litellm_models: dict[str, Any] = {
        m.opencode_id.split("/", 1)[1]: {"name": m.name}
        for m in list_models(agent.agent_type)
        if m.opencode_id.startswith("litellm/")
    }
    anthropic: dict[str, Any] = {"options": {"baseURL": base_url, "apiKey": API_KEY_REF}}
    selected, options = _model_options(agent)
    provider_id, model_key = selected.split("/", 1)
    if options and provider_id == "litellm":
        litellm_models[model_key] = {**litellm_models[model_key], "options": options}
    elif options:
        anthropic["models"] = {model_key: {"options": options}}
    config: dict[str, Any] = {
        "$schema": CONFIG_SCHEMA,
        "model": selected,
        "enabled_providers": ["anthropic", "litellm"],
        "provider": {
            "anthropic": anthropic,
            "litellm": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "LiteLLM",
                "options": {"baseURL": base_url, "apiKey": API_KEY_REF},
                "models": litellm_models,
            },
        },
        "server": {"port": ports.agent, "hostname": "127.0.0.1"},
        "plugin": [f"{home}/{PLUGIN_PATH}"],
        "permission": {"*": "allow", "question": "deny"},
        "instructions": [f"{home}/{INSTRUCTIONS_PATH}"],
        "mcp": _mcp(caps),
        "autoupdate": False,
        "share": "disabled",
    }
    return config


def _mcp(caps: Capabilities) -> dict[str, Any]:
    if not caps.playwright_mcp:
        return {}
    return {
        "playwright": {
            "type": "local",
            "command": ["npx", "-y", "@playwright/mcp", "--headless", "--isolated", "--caps", "vision"],
            "enabled": True,
        }
    }


def render_opencode_config(
    agent: AgentConfig, llm_base_url: str, ports: Ports, caps: Capabilities, *, home_dir: str
) -> bytes:
    """Deterministic bytes: sorted keys, two-space indent, UTF-8, trailing newline."""
    config = opencode_config(agent, llm_base_url, ports, caps, home_dir=home_dir)
    return (json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
