"""litellm, imported once and configured before first use (never at import of this package)."""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType
from typing import Any


def import_litellm() -> ModuleType:
    """litellm with its bundled price table (no download), no telemetry, chat-completions bridging."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    # litellm's Anthropic adapter looks for the router of litellm's own proxy server by importing
    # it on every call; without that server's extras the import fails after ~100 ms, each time.
    # We are the proxy: None in sys.modules makes that import fail at once.
    sys.modules.setdefault("litellm.proxy.proxy_server", None)  # type: ignore[arg-type]
    import litellm

    litellm.telemetry = False
    litellm.drop_params = True
    litellm.suppress_debug_info = True
    # Anthropic-dialect callers of OpenAI-compatible upstreams go through /chat/completions
    # (what OpenAI-compatible servers speak), not the Responses API.
    litellm.use_chat_completions_url_for_anthropic_messages = True
    _release_foreign_loggers()
    return litellm


def _release_foreign_loggers() -> None:
    """litellm hangs its own redaction filters on other libraries' loggers (uvicorn, httpx…),
    which stamp every record with an attribute our JSON logs would then print. The kit's
    redaction already covers those loggers, so the filters are taken off again."""
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.lower().startswith("litellm") or not isinstance(logger, logging.Logger):
            continue
        for candidate in list(logger.filters):
            if getattr(candidate, "__module__", type(candidate).__module__).startswith("litellm"):
                logger.removeFilter(candidate)


def model_cost() -> dict[str, Any]:
    table: dict[str, Any] = import_litellm().model_cost
    return table
