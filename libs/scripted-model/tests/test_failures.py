"""Failures on demand: delays, pauses at a gate, mid-stream errors and drops, client disconnects."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from proliferate.scripted_model import ScriptedModel, Turn, serve_in_thread

from .conftest import sse_data, sse_events

CHAT = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hello"}]}
MESSAGES = {
    "model": "m",
    "max_tokens": 10,
    "stream": True,
    "messages": [{"role": "user", "content": "hello"}],
}


async def test_pause_sends_first_chunk_before_the_last(
    scripted_model: ScriptedModel, http: httpx.AsyncClient
) -> None:
    scripted_model.script(Turn(text="abcdefgh", chunk_chars=2, pause_after_chunks=2, gate="g"))
    async with http.stream(
        "POST", f"{scripted_model.openai_base_url}/chat/completions", json=CHAT
    ) as response:
        lines = response.aiter_lines()
        first = await anext(lines)
        assert first.startswith("data: ")
        assert not scripted_model.requests[0].completed
        scripted_model.release("g")
        rest = [line async for line in lines]
    assert rest[-2] == "data: [DONE]"
    assert scripted_model.requests[0].completed


async def test_release_over_http(scripted_model: ScriptedModel, http: httpx.AsyncClient) -> None:
    scripted_model.script(Turn(text="x", pause_after_chunks=0, gate="held"))
    pending = asyncio.create_task(
        http.post(f"{scripted_model.openai_base_url}/chat/completions", json={**CHAT, "stream": False})
    )
    await scripted_model.wait_for_requests(1)
    assert not pending.done()
    await http.post(f"{scripted_model.url}/_scripted/gates/held")
    assert (await pending).status_code == 200


async def test_openai_mid_stream_error_event(scripted_model: ScriptedModel, http: httpx.AsyncClient) -> None:
    scripted_model.script(Turn(text="abcdefgh", chunk_chars=2, break_after_chunks=3, error_message="boom"))
    response = await http.post(f"{scripted_model.openai_base_url}/chat/completions", json=CHAT)
    frames = sse_data(response.text)
    assert len(frames) == 4
    assert frames[-1]["error"]["message"] == "boom"
    assert "[DONE]" not in frames


async def test_anthropic_mid_stream_error_event(
    scripted_model: ScriptedModel, http: httpx.AsyncClient
) -> None:
    scripted_model.script(
        Turn(text="abcdefgh", chunk_chars=2, break_after_chunks=3, error_type="overloaded_error")
    )
    events = sse_events((await http.post(f"{scripted_model.url}/v1/messages", json=MESSAGES)).text)
    assert [k for k, _ in events] == ["message_start", "ping", "content_block_start", "error"]
    assert events[-1][1]["error"]["type"] == "overloaded_error"


async def test_mid_stream_connection_drop(scripted_model: ScriptedModel, http: httpx.AsyncClient) -> None:
    scripted_model.script(Turn(text="abcdefgh", chunk_chars=2, break_after_chunks=2, break_mode="close"))
    received: list[str] = []
    with pytest.raises(httpx.HTTPError):
        async with http.stream(
            "POST", f"{scripted_model.openai_base_url}/chat/completions", json=CHAT
        ) as response:
            async for line in response.aiter_lines():
                received.append(line)
    assert len([line for line in received if line.startswith("data: ")]) == 2
    assert not scripted_model.requests[0].completed


async def test_client_disconnect_is_recorded(scripted_model: ScriptedModel, http: httpx.AsyncClient) -> None:
    scripted_model.script(Turn(text="abcdefgh", chunk_chars=2, pause_after_chunks=1))
    async with http.stream(
        "POST", f"{scripted_model.openai_base_url}/chat/completions", json=CHAT
    ) as response:
        await anext(response.aiter_lines())
    await scripted_model.wait_until(lambda: scripted_model.requests[0].client_disconnected)
    assert not scripted_model.requests[0].completed


async def test_delays(scripted_model: ScriptedModel, http: httpx.AsyncClient) -> None:
    scripted_model.script(Turn(text="abcd", chunk_chars=1, delay_s=0.05, chunk_delay_s=0.01))
    frames = sse_data((await http.post(f"{scripted_model.openai_base_url}/chat/completions", json=CHAT)).text)
    assert frames[-1] == "[DONE]"


def test_serve_in_thread_for_synchronous_code() -> None:
    with serve_in_thread() as model:
        model.script(Turn(text="from a thread", pause_after_chunks=0))
        model.release()
        body = {**CHAT, "stream": False}
        response = httpx.post(f"{model.openai_base_url}/chat/completions", json=body, timeout=10)
        assert response.json()["choices"][0]["message"]["content"] == "from a thread"
        assert json.loads(json.dumps(model.requests[0].body)) == body
