"""Scripts: turn matching and consumption, fallbacks, built-ins, templates, the request record."""

from __future__ import annotations

import httpx
import pytest
from proliferate.scripted_model import Match, Script, ScriptedModel, ToolCall, Turn, agent_turns
from proliferate.scripted_model.builtin import dev

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
TOOLS = [{"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}}]


async def _say(http: httpx.AsyncClient, model: ScriptedModel, body: dict[str, object] = CHAT) -> str:
    response = await http.post(f"{model.openai_base_url}/chat/completions", json=body)
    content: str = response.json()["choices"][0]["message"]["content"] or ""
    return content


async def test_turns_are_taken_in_order_then_fallback(
    scripted_model: ScriptedModel, http: httpx.AsyncClient
) -> None:
    scripted_model.script(Turn(text="one"), Turn(text="two"), fallback=Turn(text="rest", times=None))
    assert [await _say(http, scripted_model) for _ in range(4)] == ["one", "two", "rest", "rest"]
    assert [r.unmatched for r in scripted_model.requests] == [False, False, True, True]
    assert [r.turn_index for r in scripted_model.requests] == [0, 0, None, None]


async def test_times_and_forever(scripted_model: ScriptedModel, http: httpx.AsyncClient) -> None:
    scripted_model.script(Turn(text="twice", times=2), Turn(text="always", times=None))
    assert [await _say(http, scripted_model) for _ in range(4)] == ["twice", "twice", "always", "always"]


async def test_first_matching_turn_wins(scripted_model: ScriptedModel, http: httpx.AsyncClient) -> None:
    scripted_model.script(
        Turn(text="for tools", when=Match(has_tools=True)),
        Turn(text="for titles", when=Match(has_tools=False)),
    )
    assert await _say(http, scripted_model) == "for titles"
    assert await _say(http, scripted_model, {**CHAT, "tools": TOOLS}) == "for tools"


def test_match_conditions() -> None:
    from proliferate.scripted_model.script import parse_request

    body = {
        "model": "m",
        "stream": True,
        "tools": TOOLS,
        "messages": [
            {"role": "system", "content": "You are a helpful agent"},
            {"role": "user", "content": [{"type": "text", "text": "please run ls"}]},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "function": {"name": "bash", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c", "content": "file.txt"},
        ],
    }
    request = parse_request(1, "openai", "/v1/chat/completions", body, {})
    assert request.last_tool_result == "file.txt"
    assert request.tool_names == ["bash"]
    assert Match(after_tool_result=True, has_tools=True, stream=True, api="openai").matches(request)
    assert Match(
        last_user_contains="run ls", system_contains="helpful", any_text_contains="file.txt"
    ).matches(request)
    assert not Match(after_tool_result=False).matches(request)
    assert not Match(api="anthropic").matches(request)
    assert not Match(model="other").matches(request)


def test_anthropic_tool_result_is_read() -> None:
    from proliferate.scripted_model.script import parse_request

    body = {
        "model": "m",
        "max_tokens": 10,
        "system": [{"type": "text", "text": "sys"}],
        "messages": [
            {"role": "user", "content": "run pwd"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "bash", "input": {}}]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "/w"}]}
                ],
            },
        ],
    }
    request = parse_request(1, "anthropic", "/v1/messages", body, {})
    assert request.last_tool_result == "/w"
    assert request.last_user_text == "run pwd"
    assert request.system_text == "sys"


async def test_agent_turns_leave_side_requests_to_the_fallback(
    scripted_model: ScriptedModel, http: httpx.AsyncClient
) -> None:
    scripted_model.script(*agent_turns(Turn(text="agent")), fallback=Turn(text="title", times=None))
    assert await _say(http, scripted_model) == "title"
    assert await _say(http, scripted_model, {**CHAT, "tools": TOOLS}) == "agent"


async def test_templates_echo_the_tool_result(scripted_model: ScriptedModel, http: httpx.AsyncClient) -> None:
    scripted_model.script(Turn(text="user said {last_user}; tool said {last_tool_result}"))
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": "tool", "tool_call_id": "c", "content": "42"},
        ],
    }
    assert await _say(http, scripted_model, body) == "user said go; tool said 42"


async def test_builtin_echo_and_responder(scripted_model: ScriptedModel, http: httpx.AsyncClient) -> None:
    scripted_model.script(builtin="echo")
    assert await _say(http, scripted_model) == "hello"
    scripted_model.responder = lambda request: Turn(text=f"computed for {request.model}")
    assert await _say(http, scripted_model) == "computed for m"


def test_dev_script_runs_commands_with_bash() -> None:
    from proliferate.scripted_model.script import parse_request

    def ask(messages: list[dict[str, object]], tools: bool = True) -> Turn:
        body = {"model": "m", "messages": messages, **({"tools": TOOLS} if tools else {})}
        return dev(parse_request(1, "openai", "/v1/chat/completions", body, {}))

    run = ask([{"role": "user", "content": "run ls -la"}])
    assert run.tool_calls == [
        ToolCall(name="bash", arguments={"command": "ls -la", "description": "Run the requested command"})
    ]
    assert "scripted model" in ask([{"role": "user", "content": "hi"}]).text
    assert (
        ask([{"role": "user", "content": "name this session please"}], tools=False).text
        == "name this session please"
    )
    after = ask(
        [{"role": "user", "content": "run ls"}, {"role": "tool", "tool_call_id": "c", "content": "a.txt"}]
    )
    assert "{last_tool_result}" in after.text


def test_unknown_builtin_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown built-in"):
        ScriptedModel(builtin="nope")


async def test_control_routes_script_another_process(
    scripted_model: ScriptedModel, http: httpx.AsyncClient
) -> None:
    base = f"{scripted_model.url}/_scripted"
    script = {
        "turns": [{"text": "from http", "when": {"has_tools": False}}],
        "fallback": {"text": "fb", "times": None},
    }
    assert (await http.put(f"{base}/script", json=script)).status_code == 200
    assert (await http.post(f"{base}/turns", json=[{"text": "appended"}])).json()["turns"] == 2
    assert (await http.get(f"{base}/script")).json()["turns"][0]["text"] == "from http"
    assert await _say(http, scripted_model) == "from http"
    assert await _say(http, scripted_model) == "appended"
    assert await _say(http, scripted_model) == "fb"
    recorded = (await http.get(f"{base}/requests")).json()
    assert [r["body"]["messages"][0]["content"] for r in recorded] == ["hello"] * 3
    assert recorded[0]["api"] == "openai"
    assert (await http.delete(f"{base}/requests")).status_code == 200
    assert (await http.get(f"{base}/requests")).json() == []
    bad = await http.put(f"{base}/script", json={"turns": [{"txet": "typo"}]})
    assert bad.status_code == 400
    assert (await http.post(f"{base}/reset")).status_code == 200
    assert scripted_model.remaining_turns == []


def test_script_round_trips_as_json() -> None:
    import msgspec

    script = Script(
        turns=[
            Turn(
                text="a",
                tool_calls=[ToolCall(name="bash", arguments={"command": "ls"})],
                when=Match(has_tools=True),
            )
        ]
    )
    assert msgspec.json.decode(msgspec.json.encode(script), type=Script) == script
