"""litellm, imported once and configured before first use (never at import of this package)."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any


def import_litellm() -> ModuleType:
    """litellm with its bundled price table (no download), no telemetry, chat-completions bridging."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    import litellm

    litellm.telemetry = False
    litellm.drop_params = True
    litellm.suppress_debug_info = True
    # Anthropic-dialect callers of OpenAI-compatible upstreams go through /chat/completions
    # (what OpenAI-compatible servers speak), not the Responses API.
    litellm.use_chat_completions_url_for_anthropic_messages = True
    return litellm


def model_cost() -> dict[str, Any]:
    table: dict[str, Any] = import_litellm().model_cost
    return table
