"""The real OpenCode agent through the proxy with only a base URL and a virtual key (issue 5 D2, §10.25)."""

from __future__ import annotations

from pathlib import Path

import pytest
from proliferate.devkit.paths import opencode_bin
from proliferate.devkit.pytest_plugin import register_log_file
from proliferate.scripted_model import Match, ToolCall, Turn, Usage, agent_turns
from proliferate.scripted_model.opencode import OpenCode, provider_config, text_of, tool_parts

from .conftest import VENDOR_KEY, Proxy, cost_of

pytestmark = pytest.mark.slow


def _conversation(marker: str) -> list[Turn]:
    command = {"command": f"echo {marker}-$((6*7))", "description": "Print the marker"}
    return agent_turns(
        Turn(
            tool_calls=[ToolCall(name="bash", arguments=command)],
            usage=Usage(input_tokens=2000, output_tokens=30),
        ),
        Turn(
            text="The tool printed {last_tool_result}",
            when=Match(after_tool_result=True, has_tools=True),
            usage=Usage(input_tokens=2100, output_tokens=12),
        ),
    )


async def test_opencode_completes_a_tool_conversation_through_the_proxy(proxy: Proxy, tmp_path: Path) -> None:
    binary = opencode_bin()
    if not binary.exists():
        pytest.skip(reason=f"OpenCode is not installed at {binary}: run `make opencode`")
    proxy.scripted.api_key = VENDOR_KEY  # the vendor accepts only the proxy's key
    issued = await proxy.issue()
    # What the sandbox gets: one base URL and one virtual key, for both provider blocks.
    config = provider_config(issued.openai_base_url, issued.key, model="scripted-gpt")
    anthropic = provider_config(
        issued.anthropic_base_url, issued.key, dialect="anthropic", model="scripted-claude"
    )
    config["provider"].update(anthropic["provider"])
    log_path = register_log_file(tmp_path / "opencode.log")
    title = Turn(text="Marker session", times=None, usage=Usage(input_tokens=100, output_tokens=3))

    async with OpenCode(binary, tmp_path / "workspace", config, log_path=log_path) as agent:
        for marker, model, api in (
            ("openai", "scripted/scripted-gpt", "openai"),
            ("anthropic", "anthropic/scripted-claude", "anthropic"),
        ):
            proxy.scripted.requests.clear()
            proxy.scripted.script(*_conversation(marker), fallback=title)
            session = await agent.create_session()
            reply = await agent.prompt(session, "print the marker", model=model)
            assert f"The tool printed {marker}-42" in text_of(reply), agent.log_tail()
            [bash] = tool_parts(await agent.messages(session), "bash")
            assert bash["state"]["status"] == "completed"
            turns = [r for r in proxy.scripted.requests if r.has_tools]
            assert len(turns) == 2 and all(r.api == api for r in turns)
            assert (turns[1].last_tool_result or "").strip() == f"{marker}-42"
            assert all(issued.key not in str(r.headers) for r in proxy.scripted.requests)

    records = await proxy.wait_records(
        lambda rows: len(rows) >= 4 and all(r["status"] != "in_flight" for r in rows)
    )
    agent_costs = sorted(r["cost_micros"] for r in records if r["prompt_tokens"] >= 2000)
    assert agent_costs == sorted([cost_of(2000, 30), cost_of(2100, 12)] * 2)
    assert all(r["status"] == "succeeded" and r["stream"] for r in records)
    assert {r["api"] for r in records} == {"openai_chat", "anthropic_messages"}
    [key] = proxy.query("SELECT spend_micros, request_count FROM virtual_keys")
    assert key["spend_micros"] == sum(r["cost_micros"] for r in records)
    assert key["request_count"] == len(records)
