"""The OpenAI dialect through the proxy: pass-through, litellm translation, spend (§10.4, 6, 7, 16)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from proliferate.protos.events.v1 import llm_proxy_pb2
from proliferate.scripted_model import ToolCall, Turn, Usage

from .conftest import VENDOR_KEY, Proxy, cost_of

SPEND = "proliferate.llm_proxy.spend.recorded"


def sse(text: str) -> list[str]:
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


async def test_non_streaming_completion_and_one_spend_event_with_exact_cost(proxy: Proxy) -> None:
    org = uuid.uuid4()
    issued = await proxy.issue(org)
    proxy.scripted.script(
        Turn(
            text="The answer is 42.",
            usage=Usage(input_tokens=1234, output_tokens=56, cache_read_tokens=1000, cache_write_tokens=8),
        )
    )
    response = await proxy.chat(issued.key)
    assert response.status_code == 200
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "The answer is 42."
    request_id = uuid.UUID(response.headers["x-request-id"])

    [record] = await proxy.wait_records(lambda rows: rows and rows[0]["status"] != "in_flight")
    expected = cost_of(1234, 56, cache_read=1000, cache_write=8)
    assert record["request_id"] == request_id
    assert (record["prompt_tokens"], record["completion_tokens"]) == (1234, 56)
    assert (record["cache_read_tokens"], record["cache_write_tokens"]) == (1000, 8)
    assert record["cost_micros"] == expected == 1234 + 112 + 100 + 10
    assert record["usage_estimated"] is False
    assert (record["api"], record["requested_model"], record["routed_model"]) == (
        "openai_chat",
        "scripted-gpt",
        "openai/scripted-gpt-upstream",
    )
    [payload] = proxy.events(SPEND)
    event = llm_proxy_pb2.SpendRecorded.FromString(payload)
    assert event.request_id == str(request_id)
    assert event.organization_id == str(org)
    assert event.cost_micros == expected
    assert event.status == "succeeded"
    [key] = proxy.query("SELECT spend_micros, request_count FROM virtual_keys")
    assert key == {"spend_micros": expected, "request_count": 1}


async def test_stream_ends_with_done_and_forwards_usage_only_when_asked(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(
        Turn(text="streamed words", chunk_chars=3, usage=Usage(input_tokens=7, output_tokens=3), times=2)
    )
    body = {"model": "scripted-gpt", "stream": True, "messages": [{"role": "user", "content": "go"}]}

    plain = await proxy.chat(issued.key, body)
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/event-stream")
    assert plain.headers["cache-control"] == "no-cache"
    frames = sse(plain.text)
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        == "streamed words"
    )
    assert all("usage" not in c or c["usage"] is None for c in chunks)
    # The proxy asked the vendor for usage anyway: the stream is priced.
    assert proxy.scripted.requests[0].body["stream_options"] == {"include_usage": True}

    asked = await proxy.chat(issued.key, {**body, "stream_options": {"include_usage": True}})
    frames = sse(asked.text)
    assert frames[-1] == "[DONE]"
    usage_chunk = json.loads(frames[-2])
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["prompt_tokens"] == 7

    records = await proxy.wait_records(
        lambda rows: len(rows) == 2 and all(r["status"] == "succeeded" for r in rows)
    )
    assert [r["cost_micros"] for r in records] == [cost_of(7, 3)] * 2
    assert all(r["stream"] and not r["usage_estimated"] for r in records)


async def test_first_chunk_reaches_the_client_before_the_upstream_sent_the_last(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(Turn(text="abcdefghij", chunk_chars=2, pause_after_chunks=2, gate="hold"))
    body = {"model": "scripted-gpt", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    async with proxy.http.stream(
        "POST",
        f"{proxy.url}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {issued.key}"},
    ) as response:
        lines = response.aiter_lines()
        first = await anext(lines)
        assert first.startswith("data: ")
        upstream = proxy.scripted.requests[0]
        assert upstream.chunks_sent == 2 and not upstream.completed  # the upstream is still held
        proxy.scripted.release("hold")
        rest = [line async for line in lines]
    assert "data: [DONE]" in rest
    await proxy.wait_records(lambda rows: rows and rows[0]["status"] == "succeeded")


async def test_litellm_control_fields_never_reach_the_vendor(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(Turn(text="ok"))
    hostile = {
        "model": "scripted-gpt",
        "messages": [{"role": "user", "content": "hi"}],
        "api_base": "http://attacker.invalid/v1",
        "base_url": "http://attacker.invalid/v1",
        "api_key": "sk-attacker",
        "mock_response": "pwned",
        "custom_llm_provider": "openai",
        "fallbacks": ["x"],
        "num_retries": 9,
        "timeout": 1,
        "extra_headers": {"x-evil": "1"},
        "temperature": 0.2,
    }
    response = await proxy.chat(issued.key, hostile)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "ok"  # not the mock
    [seen] = proxy.scripted.requests
    assert seen.path == "/v1/chat/completions"
    assert set(seen.body) == {"model", "messages", "temperature"}
    assert seen.body["model"] == "scripted-gpt-upstream"
    assert seen.headers["authorization"] == f"Bearer {VENDOR_KEY}"
    assert "x-evil" not in seen.headers


async def test_alias_resolves_and_tool_calls_pass_through(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(Turn(tool_calls=[ToolCall(name="bash", arguments={"command": "ls"})]))
    body = {
        "model": "gpt-scripted",
        "messages": [{"role": "user", "content": "list"}],
        "tools": [{"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}}],
    }
    response = await proxy.chat(issued.key, body)
    call = response.json()["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "bash"
    assert proxy.scripted.requests[0].tool_names == ["bash"]


async def test_openai_caller_of_an_anthropic_route_goes_through_litellm(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(Turn(text="translated", usage=Usage(input_tokens=20, output_tokens=4), times=2))
    body = {"model": "scripted-claude", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    whole = await proxy.chat(issued.key, body)
    assert whole.status_code == 200, whole.text
    assert whole.json()["choices"][0]["message"]["content"] == "translated"
    streamed = await proxy.chat(issued.key, {**body, "stream": True})
    frames = sse(streamed.text)
    assert frames[-1] == "[DONE]"
    text = "".join(
        json.loads(f)["choices"][0]["delta"].get("content") or ""
        for f in frames[:-1]
        if json.loads(f)["choices"]
    )
    assert text == "translated"
    assert [r.api for r in proxy.scripted.requests] == ["anthropic", "anthropic"]
    assert proxy.scripted.requests[0].headers["x-api-key"] == VENDOR_KEY
    records = await proxy.wait_records(
        lambda rows: len(rows) == 2 and all(r["status"] == "succeeded" for r in rows)
    )
    assert [(r["prompt_tokens"], r["completion_tokens"], r["cost_micros"]) for r in records] == [
        (20, 4, cost_of(20, 4))
    ] * 2


async def test_a_request_that_ends_with_the_vendors_usage_never_counts_its_prompt_locally(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Counting is for the in-flight row of a request still running after IN_FLIGHT_DELAY_S, and
    # for requests that end without usage; a quick answer with usage skips it (llm-proxy §5.2.5).
    assert proxy.running is not None and proxy.running.parts.http is not None
    counter = proxy.running.parts.http.app.service.counter
    counted: list[str] = []
    original = counter.prompt

    async def spy(model: str, request: Any) -> int:
        counted.append(model)
        return int(await original(model, request))

    monkeypatch.setattr(counter, "prompt", spy)
    issued = await proxy.issue()
    proxy.scripted.script(
        Turn(text="quick", chunk_chars=2, usage=Usage(input_tokens=7, output_tokens=3), times=2)
    )
    streamed = await proxy.chat(
        issued.key, {"model": "scripted-gpt", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    whole = await proxy.chat(issued.key)
    assert (streamed.status_code, whole.status_code) == (200, 200)
    rows = await proxy.wait_records(
        lambda rows: len(rows) == 2 and all(r["status"] == "succeeded" for r in rows)
    )
    assert [(r["prompt_tokens"], r["usage_estimated"]) for r in rows] == [(7, False), (7, False)]
    assert counted == []
