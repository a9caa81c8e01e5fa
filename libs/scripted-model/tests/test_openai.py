"""The OpenAI Chat Completions dialect: shapes, streaming, tool calls, usage, errors."""

from __future__ import annotations

import json

import httpx
from proliferate.scripted_model import ScriptedModel, ToolCall, Turn, Usage

from .conftest import sse_data

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hello"}]}


async def test_completion_returns_scripted_text_and_usage(
    scripted_model: ScriptedModel, http: httpx.AsyncClient
) -> None:
    scripted_model.script(
        Turn(text="Hi there", usage=Usage(input_tokens=120, output_tokens=7, cache_read_tokens=20))
    )
    response = await http.post(f"{scripted_model.openai_base_url}/chat/completions", json=CHAT)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-test"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hi there"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] == 120
    assert body["usage"]["completion_tokens"] == 7
    assert body["usage"]["total_tokens"] == 127
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 20}


async def test_completion_with_tool_call(scripted_model: ScriptedModel, http: httpx.AsyncClient) -> None:
    scripted_model.script(
        Turn(tool_calls=[ToolCall(name="bash", arguments={"command": "ls -la"}, id="call_1")])
    )
    body = (await http.post(f"{scripted_model.openai_base_url}/chat/completions", json=CHAT)).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == "call_1"
    assert call["function"]["name"] == "bash"
    assert json.loads(call["function"]["arguments"]) == {"command": "ls -la"}


async def test_stream_chunks_text_and_ends_with_done(
    scripted_model: ScriptedModel, http: httpx.AsyncClient
) -> None:
    scripted_model.script(
        Turn(text="abcdefghij", chunk_chars=3, usage=Usage(input_tokens=5, output_tokens=4))
    )
    response = await http.post(
        f"{scripted_model.openai_base_url}/chat/completions", json={**CHAT, "stream": True}
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = sse_data(response.text)
    assert frames[-1] == "[DONE]"
    deltas = [f["choices"][0]["delta"].get("content") for f in frames[:-1] if f["choices"]]
    assert "".join(d for d in deltas if d) == "abcdefghij"
    assert deltas.count(None) == 1  # the finish chunk
    assert frames[-2]["choices"][0]["finish_reason"] == "stop"
    # No usage chunk unless the client asked for it, as OpenAI does.
    assert all("usage" not in f for f in frames[:-1])


async def test_stream_usage_chunk_only_when_asked(
    scripted_model: ScriptedModel, http: httpx.AsyncClient
) -> None:
    scripted_model.script(Turn(text="ok", usage=Usage(input_tokens=11, output_tokens=2)))
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    frames = sse_data((await http.post(f"{scripted_model.openai_base_url}/chat/completions", json=body)).text)
    usage_chunk = frames[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}


async def test_stream_tool_call_arguments_reassemble(
    scripted_model: ScriptedModel, http: httpx.AsyncClient
) -> None:
    arguments = {"command": "echo one two three four five", "description": "say numbers"}
    scripted_model.script(
        Turn(text="Running it.", tool_calls=[ToolCall(name="bash", arguments=arguments)], chunk_chars=5)
    )
    frames = sse_data(
        (
            await http.post(
                f"{scripted_model.openai_base_url}/chat/completions", json={**CHAT, "stream": True}
            )
        ).text
    )
    pieces = [call for f in frames[:-1] for call in f["choices"][0]["delta"].get("tool_calls", [])]
    assert pieces[0]["function"]["name"] == "bash"
    assert pieces[0]["id"].startswith("call_")
    assert len(pieces) > 2  # streamed in several pieces
    assert json.loads("".join(p["function"]["arguments"] for p in pieces)) == arguments
    assert frames[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_estimated_usage_when_not_scripted(
    scripted_model: ScriptedModel, http: httpx.AsyncClient
) -> None:
    scripted_model.script(Turn(text="x" * 40))
    body = (await http.post(f"{scripted_model.openai_base_url}/chat/completions", json=CHAT)).json()
    assert body["usage"]["completion_tokens"] == 10
    assert body["usage"]["prompt_tokens"] > 0


async def test_scripted_error_status_in_openai_shape(
    scripted_model: ScriptedModel, http: httpx.AsyncClient
) -> None:
    scripted_model.script(Turn(status=429, retry_after=7, error_message="slow down"))
    response = await http.post(f"{scripted_model.openai_base_url}/chat/completions", json=CHAT)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["message"] == "slow down"
    assert response.json()["error"]["type"] == "rate_limit_exceeded"


async def test_invalid_body_gets_400_and_keeps_the_turn(
    scripted_model: ScriptedModel, http: httpx.AsyncClient
) -> None:
    scripted_model.script(Turn(text="kept"))
    url = f"{scripted_model.openai_base_url}/chat/completions"
    assert (await http.post(url, content=b"{not json")).status_code == 400
    assert (await http.post(url, json={"model": "m", "messages": []})).status_code == 400
    assert (await http.post(url, json=CHAT)).json()["choices"][0]["message"]["content"] == "kept"


async def test_api_key_required_when_configured(http: httpx.AsyncClient) -> None:
    async with ScriptedModel(api_key="sk-vendor-key-0001") as model:
        url = f"{model.openai_base_url}/chat/completions"
        assert (await http.post(url, json=CHAT)).status_code == 401
        wrong = await http.post(url, json=CHAT, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await http.post(url, json=CHAT, headers={"authorization": "Bearer sk-vendor-key-0001"})
        assert ok.status_code == 200
        assert model.requests[-1].headers["authorization"] == "Bearer sk-vendor-key-0001"


async def test_models_route(scripted_model: ScriptedModel, http: httpx.AsyncClient) -> None:
    body = (await http.get(f"{scripted_model.openai_base_url}/models")).json()
    assert body["object"] == "list"
