"""How litellm is configured when the proxy imports it."""

from __future__ import annotations

import importlib

import pytest
from proliferate.llm_proxy.vendor import import_litellm


def test_litellms_own_proxy_server_is_never_imported() -> None:
    # litellm's Anthropic adapter imports `litellm.proxy.proxy_server` on every call to find that
    # server's router; without the server's extras each attempt cost ~100 ms of the first byte.
    # (It fails without the shim too, only slowly: the test checks it fails at once, unloaded.)
    litellm = import_litellm()
    with pytest.raises(ImportError, match="halted"):
        importlib.import_module("litellm.proxy.proxy_server")
    assert litellm.telemetry is False
    assert litellm.use_chat_completions_url_for_anthropic_messages is True
