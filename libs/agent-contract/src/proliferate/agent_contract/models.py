"""Model registry (agent-contract.md §2.5): canonical ids, OpenCode ids and API ids."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

DEFAULT_MODEL_ID = "claude-sonnet-4.6"
ModelProvider = Literal["anthropic", "openai", "google", "deepseek", "xai", "mistral"]


class ModelInfo(msgspec.Struct, frozen=True):
    id: str  # canonical
    opencode_id: str  # "<opencode provider>/<model>", no date suffix
    api_id: str  # what the vendor API (through llm_proxy) calls it
    provider: ModelProvider
    reasoning: bool
    name: str


_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        "claude-sonnet-4.6",
        "anthropic/claude-sonnet-4-6",
        "claude-sonnet-4-6",
        "anthropic",
        True,
        "Claude Sonnet 4.6",
    ),
    ModelInfo(
        "claude-opus-4.6",
        "anthropic/claude-opus-4-6",
        "claude-opus-4-6",
        "anthropic",
        True,
        "Claude Opus 4.6",
    ),
    ModelInfo("gpt-5.2", "litellm/gpt-5.2", "gpt-5.2", "openai", True, "GPT-5.2"),
    ModelInfo(
        "gemini-3-pro",
        "litellm/gemini-3-pro-preview",
        "gemini-3-pro-preview",
        "google",
        False,
        "Gemini 3 Pro",
    ),
    ModelInfo(
        "gemini-3-flash",
        "litellm/gemini-3-flash-preview",
        "gemini-3-flash-preview",
        "google",
        False,
        "Gemini 3 Flash",
    ),
    ModelInfo("deepseek-v3", "litellm/deepseek-v3", "deepseek-chat", "deepseek", False, "DeepSeek V3"),
    ModelInfo("deepseek-r1", "litellm/deepseek-r1", "deepseek-reasoner", "deepseek", True, "DeepSeek R1"),
    ModelInfo("grok-4.1", "litellm/grok-4.1", "grok-4.1", "xai", True, "Grok 4.1"),
    ModelInfo("grok-4.1-fast", "litellm/grok-4.1-fast", "grok-4.1-fast", "xai", False, "Grok 4.1 Fast"),
    ModelInfo("codestral", "litellm/codestral", "codestral-latest", "mistral", False, "Codestral"),
)
_BY_ID = {m.id: m for m in _MODELS}

# Family words → canonical id, checked in order after exact matches ("opus 4.5" → the current Opus).
_FAMILIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("opus",), "claude-opus-4.6"),
    (("sonnet",), "claude-sonnet-4.6"),
    (("claude",), "claude-sonnet-4.6"),
    (("gemini", "flash"), "gemini-3-flash"),
    (("gemini",), "gemini-3-pro"),
    (("deepseek", "r1"), "deepseek-r1"),
    (("deepseek", "reasoner"), "deepseek-r1"),
    (("deepseek",), "deepseek-v3"),
    (("grok", "fast"), "grok-4.1-fast"),
    (("grok",), "grok-4.1"),
    (("codestral",), "codestral"),
    (("mistral",), "codestral"),
    (("gpt",), "gpt-5.2"),
)


def list_models(agent_type: str = "opencode") -> list[ModelInfo]:
    """Every model the agent type can run; `opencode` is the only agent type."""
    return list(_MODELS) if agent_type == "opencode" else []


def get_model(model_id: str) -> ModelInfo:
    """The registry entry of a canonical id; anything else resolves through `parse_model_id`."""
    return _BY_ID.get(model_id) or _BY_ID[parse_model_id(model_id)]


def parse_model_id(text: str | None) -> str:
    """A canonical id for whatever a user, config or older client wrote; unknown → the default."""
    if not text:
        return DEFAULT_MODEL_ID
    norm = re.sub(r"[\s_]+", "-", text.strip().lower())
    for m in _MODELS:
        if norm in (m.id, m.opencode_id, m.api_id, m.opencode_id.split("/", 1)[1]):
            return m.id
    words = set(re.split(r"[^a-z0-9]+", norm))
    for needles, model_id in _FAMILIES:
        if all(n in words or n in norm for n in needles):
            return model_id
    return DEFAULT_MODEL_ID


def to_opencode_model_id(model_id: str) -> str:
    return get_model(model_id).opencode_id


def to_api_model_id(model_id: str) -> str:
    return get_model(model_id).api_id
