from __future__ import annotations

import pytest
from proliferate.agent_contract import (
    DEFAULT_MODEL_ID,
    list_models,
    parse_model_id,
    to_api_model_id,
    to_opencode_model_id,
)


class TestModelRegistry:
    def test_every_canonical_id_maps_to_opencode_and_api_ids(self) -> None:
        models = list_models("opencode")
        assert len(models) == 10
        for m in models:
            assert to_opencode_model_id(m.id) == m.opencode_id
            assert to_api_model_id(m.id) == m.api_id
            provider, _, name = m.opencode_id.partition("/")
            assert provider == ("anthropic" if m.provider == "anthropic" else "litellm")
            assert not name[-8:].isdigit(), "OpenCode ids carry no date suffix"

    def test_default_is_sonnet(self) -> None:
        assert DEFAULT_MODEL_ID == "claude-sonnet-4.6"

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("opus 4.5", "claude-opus-4.6"),
            ("claude-opus-4.6", "claude-opus-4.6"),
            ("anthropic/claude-sonnet-4-6", "claude-sonnet-4.6"),
            ("deepseek-reasoner", "deepseek-r1"),
            ("litellm/gemini-3-flash-preview", "gemini-3-flash"),
            ("Grok 4.1 Fast", "grok-4.1-fast"),
            ("codestral-latest", "codestral"),
            ("gpt-5.2", "gpt-5.2"),
            ("no-such-model", DEFAULT_MODEL_ID),
            ("", DEFAULT_MODEL_ID),
            (None, DEFAULT_MODEL_ID),
        ],
    )
    def test_parse_model_id(self, text: str | None, expected: str) -> None:
        assert parse_model_id(text) == expected

    def test_unknown_id_transforms_to_default(self) -> None:
        assert to_opencode_model_id("mystery") == "anthropic/claude-sonnet-4-6"

    def test_other_agent_types_have_no_models(self) -> None:
        assert list_models("claude-code") == []
