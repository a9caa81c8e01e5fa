from __future__ import annotations

import json

import pytest
from proliferate.agent_contract import (
    AgentConfig,
    Capabilities,
    Ports,
    normalize_llm_base_url,
    render_opencode_config,
)


def config(**kw: object) -> dict:  # type: ignore[type-arg]
    agent = kw.pop("agent", AgentConfig())
    caps = kw.pop("caps", Capabilities())
    raw = render_opencode_config(agent, "https://llm.test", Ports(agent=41001), caps, home_dir="/home/user")  # type: ignore[arg-type]
    return json.loads(raw)  # type: ignore[no-any-return]


class TestOpencodeConfig:
    def test_shape(self) -> None:
        c = config()
        assert c["$schema"] == "https://opencode.ai/config.json"
        assert c["model"] == "anthropic/claude-sonnet-4-6"
        assert c["provider"]["anthropic"]["options"] == {
            "baseURL": "https://llm.test/v1",
            "apiKey": "{env:ANTHROPIC_API_KEY}",
        }
        litellm = c["provider"]["litellm"]
        assert litellm["npm"] == "@ai-sdk/openai-compatible" and litellm["name"] == "LiteLLM"
        assert litellm["options"]["baseURL"] == "https://llm.test/v1"
        assert "gpt-5.2" in litellm["models"] and not any(k.startswith("claude") for k in litellm["models"])
        assert c["server"] == {"port": 41001, "hostname": "127.0.0.1"}
        assert c["plugin"] == ["/home/user/.config/opencode/plugin/proliferate.mjs"]
        assert c["instructions"] == ["/home/user/.config/opencode/proliferate/instructions.md"]
        assert c["permission"] == {"*": "allow", "question": "deny"}
        assert c["mcp"] == {} and c["autoupdate"] is False
        assert c["enabled_providers"] == ["anthropic", "litellm"]

    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("https://llm.test", "https://llm.test/v1"),
            ("https://llm.test/", "https://llm.test/v1"),
            ("https://llm.test/v1/", "https://llm.test/v1"),
            ("https://llm.test/v1/v1", "https://llm.test/v1"),
            ("http://127.0.0.1:9000/proxy", "http://127.0.0.1:9000/proxy/v1"),
        ],
    )
    def test_base_url_has_exactly_one_v1(self, url: str, expected: str) -> None:
        assert normalize_llm_base_url(url) == expected

    def test_playwright_only_when_available(self) -> None:
        assert config(caps=Capabilities(playwright_mcp=True))["mcp"]["playwright"]["type"] == "local"

    def test_deep_reasoning_sets_model_options(self) -> None:
        c = config(agent=AgentConfig(model_id="claude-opus-4.6", reasoning_effort="deep"))
        assert (
            c["provider"]["anthropic"]["models"]["claude-opus-4-6"]["options"]["thinking"]["type"]
            == "enabled"
        )
        c = config(agent=AgentConfig(model_id="gpt-5.2", reasoning_effort="quick"))
        assert c["provider"]["litellm"]["models"]["gpt-5.2"]["options"] == {"reasoningEffort": "low"}
        c = config(agent=AgentConfig(model_id="codestral", reasoning_effort="deep"))
        assert "options" not in c["provider"]["litellm"]["models"]["codestral"]
