"""The real OpenCode agent, driven by the scripted model: a tool call it runs for real, in both dialects."""

from __future__ import annotations

from pathlib import Path

import pytest
from proliferate.devkit.paths import opencode_bin
from proliferate.scripted_model import Match, ScriptedModel, ToolCall, Turn, agent_turns
from proliferate.scripted_model.opencode import OpenCode, provider_config, text_of, tool_parts

pytestmark = pytest.mark.slow


def _bash_then_report(marker: str) -> list[Turn]:
    # `$((6*7))` is expanded only if a real shell ran the command.
    command = {"command": f"echo {marker}-$((6*7))", "description": "Print the marker"}
    return agent_turns(
        Turn(text="Running it.", tool_calls=[ToolCall(name="bash", arguments=command)]),
        Turn(
            text="The command printed: {last_tool_result}", when=Match(after_tool_result=True, has_tools=True)
        ),
    )


async def test_opencode_runs_scripted_bash_and_sees_its_output(
    tmp_path: Path, scripted_model: ScriptedModel
) -> None:
    binary = opencode_bin()
    if not binary.exists():
        pytest.skip(reason=f"OpenCode is not installed at {binary}: run `make opencode`")
    scripted_model.script(*_bash_then_report("openai"), fallback=Turn(text="Scripted title", times=None))
    config = provider_config(scripted_model.openai_base_url, "sk-scripted-test-key")
    anthropic = provider_config(
        scripted_model.openai_base_url, "sk-scripted-test-key", dialect="anthropic", model="claude-test"
    )
    config["provider"].update(anthropic["provider"])

    async with OpenCode(binary, tmp_path / "workspace", config) as agent:
        session = await agent.create_session()
        reply = await agent.prompt(session, "print the marker")
        messages = await agent.messages(session)

        assert "The command printed: openai-42" in text_of(reply), agent.log_tail()
        [bash] = tool_parts(messages, "bash")
        assert bash["state"]["status"] == "completed"
        assert "openai-42" in bash["state"]["output"]
        turns = [r for r in scripted_model.requests if r.has_tools]
        assert len(turns) == 2
        assert all(r.api == "openai" and r.stream for r in turns)
        assert "bash" in turns[0].tool_names
        assert turns[0].last_tool_result is None
        assert (turns[1].last_tool_result or "").strip() == "openai-42"
        assert turns[0].headers["authorization"] == "Bearer sk-scripted-test-key"

        # The same conversation through OpenCode's Anthropic provider (`/v1/messages`).
        scripted_model.requests.clear()
        scripted_model.script(
            *_bash_then_report("anthropic"), fallback=Turn(text="Scripted title", times=None)
        )
        session = await agent.create_session()
        reply = await agent.prompt(session, "print the marker", model="anthropic/claude-test")
        assert "The command printed: anthropic-42" in text_of(reply), agent.log_tail()
        turns = [r for r in scripted_model.requests if r.has_tools]
        assert [r.api for r in turns] == ["anthropic", "anthropic"]
        assert (turns[1].last_tool_result or "").strip() == "anthropic-42"
        assert turns[0].headers["x-api-key"] == "sk-scripted-test-key"
