"""The Anthropic Messages dialect: shapes, event framing, tool use, usage, errors."""

from __future__ import annotations

import httpx
from proliferate.scripted_model import ScriptedModel, ToolCall, Turn, Usage

from .conftest import sse_events

MESSAGES = {"model": "claude-test", "max_tokens": 100, "messages": [{"role": "user", "content": "hello"}]}


async def test_message_returns_text_and_usage(scripted_model: ScriptedModel, http: httpx.AsyncClient) -> None:
    scripted_model.script(
        Turn(
            text="Hi",
            usage=Usage(input_tokens=50, output_tokens=3, cache_read_tokens=9, cache_write_tokens=4),
        )
    )
    response = await http.post(f"{scripted_model.url}/v1/messages", json=MESSAGES)
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "message"
    assert body["content"] == [{"type": "text", "text": "Hi"}]
    assert body["stop_reason"] == "end_turn"
    assert body["usage"] == {
        "input_tokens": 50,
        "output_tokens": 3,
        "cache_creation_input_tokens": 4,
        "cache_read_input_tokens": 9,
    }


async def test_message_with_tool_use(scripted_model: ScriptedModel, http: httpx.AsyncClient) -> None:
    scripted_model.script(
        Turn(text="Let me look.", tool_calls=[ToolCall(name="read", arguments={"path": "a.txt"})])
    )
    body = (await http.post(f"{scripted_model.url}/v1/messages", json=MESSAGES)).json()
    assert body["stop_reason"] == "tool_use"
    text, tool = body["content"]
    assert text == {"type": "text", "text": "Let me look."}
    assert tool["type"] == "tool_use"
    assert tool["name"] == "read"
    assert tool["input"] == {"path": "a.txt"}
    assert tool["id"].startswith("toolu_")


async def test_stream_event_order_and_framing(scripted_model: ScriptedModel, http: httpx.AsyncClient) -> None:
    scripted_model.script(
        Turn(
            text="hello world",
            chunk_chars=4,
            tool_calls=[ToolCall(name="bash", arguments={"command": "pwd"})],
            usage=Usage(input_tokens=30, output_tokens=12),
        )
    )
    response = await http.post(f"{scripted_model.url}/v1/messages", json={**MESSAGES, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["message_start", "ping"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert all(kind == data["type"] for kind, data in events)
    assert events[0][1]["message"]["usage"]["input_tokens"] == 30
    assert events[-2][1]["usage"] == {"output_tokens": 12}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    text = "".join(d["delta"]["text"] for k, d in events if k == "content_block_delta" and d["index"] == 0)
    assert text == "hello world"
    partial = "".join(
        d["delta"]["partial_json"] for k, d in events if k == "content_block_delta" and d["index"] == 1
    )
    assert partial == '{"command": "pwd"}'
    starts = [d["content_block"]["type"] for k, d in events if k == "content_block_start"]
    assert starts == ["text", "tool_use"]


async def test_max_tokens_required(scripted_model: ScriptedModel, http: httpx.AsyncClient) -> None:
    body = {k: v for k, v in MESSAGES.items() if k != "max_tokens"}
    response = await http.post(f"{scripted_model.url}/v1/messages", json=body)
    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_scripted_overload_in_anthropic_shape(
    scripted_model: ScriptedModel, http: httpx.AsyncClient
) -> None:
    scripted_model.script(Turn(status=529))
    response = await http.post(f"{scripted_model.url}/v1/messages", json=MESSAGES)
    assert response.status_code == 529
    assert response.json() == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "scripted error"},
    }


async def test_x_api_key_accepted(http: httpx.AsyncClient) -> None:
    async with ScriptedModel(api_key="sk-ant-vendor-0001") as model:
        response = await http.post(
            f"{model.url}/v1/messages", json=MESSAGES, headers={"x-api-key": "sk-ant-vendor-0001"}
        )
        assert response.status_code == 200
