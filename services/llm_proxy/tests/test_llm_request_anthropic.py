"""The Anthropic dialect through the proxy: event framing, usage, translation, side routes (§10.5)."""

from __future__ import annotations

import json

from proliferate.scripted_model import ToolCall, Turn, Usage

from .conftest import VENDOR_KEY, Proxy, cost_of


def events(text: str) -> list[tuple[str, dict[str, object]]]:
    out = []
    for frame in text.strip().split("\n\n"):
        lines = frame.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), frame
        out.append((lines[0][7:], json.loads(lines[1][6:])))
    return out


async def test_stream_forwards_every_event_in_order_and_ends_with_message_stop(proxy: Proxy) -> None:
    issued = await proxy.issue()
    turn = Turn(
        text="Let me run it.",
        tool_calls=[ToolCall(name="bash", arguments={"command": "pwd"})],
        chunk_chars=4,
        usage=Usage(input_tokens=300, output_tokens=25, cache_read_tokens=100, cache_write_tokens=40),
        times=2,
    )
    proxy.scripted.script(turn)
    body = {
        "model": "scripted-claude",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "go"}],
    }
    response = await proxy.message(
        issued.key, body, **{"anthropic-version": "2023-06-01", "anthropic-beta": "tools-2024"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    received = events(response.text)
    kinds = [kind for kind, _ in received]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds[-2] == "message_delta"
    assert all(kind == data["type"] for kind, data in received)

    # Exactly the scripted model's own event sequence, in order (ids aside).
    direct = await proxy.http.post(f"{proxy.scripted.url}/v1/messages", json=body)
    assert kinds == [kind for kind, _ in events(direct.text)]
    [upstream, _] = proxy.scripted.requests
    assert upstream.headers["x-api-key"] == VENDOR_KEY
    assert upstream.headers["anthropic-beta"] == "tools-2024"
    assert upstream.body["model"] == "claude-scripted-upstream"

    [record] = await proxy.wait_records(lambda rows: rows and rows[0]["status"] == "succeeded")
    assert (record["prompt_tokens"], record["completion_tokens"]) == (300, 25)
    assert (record["cache_read_tokens"], record["cache_write_tokens"]) == (100, 40)
    assert record["cost_micros"] == cost_of(300, 25, 100, 40)
    assert record["api"] == "anthropic_messages"


async def test_non_streaming_message(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(Turn(text="Hi!", usage=Usage(input_tokens=9, output_tokens=2)))
    response = await proxy.message(issued.key)
    assert response.status_code == 200
    assert response.json()["content"] == [{"type": "text", "text": "Hi!"}]
    [record] = await proxy.wait_records(lambda rows: rows and rows[0]["status"] == "succeeded")
    assert record["cost_micros"] == cost_of(9, 2)


async def test_bearer_authorization_works_on_the_anthropic_route_too(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(Turn(text="ok"))
    body = {"model": "claude-scripted", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    response = await proxy.http.post(
        f"{proxy.url}/v1/messages", json=body, headers={"authorization": f"Bearer {issued.key}"}
    )
    assert response.status_code == 200


async def test_anthropic_caller_of_an_openai_route_goes_through_litellm(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(
        Turn(
            text="from gpt",
            tool_calls=[ToolCall(name="bash", arguments={"command": "ls"})],
            usage=Usage(input_tokens=40, output_tokens=6),
            times=2,
        )
    )
    body = {
        "model": "scripted-gpt",
        "max_tokens": 50,
        "system": "be brief",
        "tools": [{"name": "bash", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "hi"}],
    }
    whole = await proxy.message(issued.key, body)
    assert whole.status_code == 200, whole.text
    content = whole.json()["content"]
    assert content[0] == {"type": "text", "text": "from gpt"}
    assert content[1]["type"] == "tool_use" and content[1]["name"] == "bash"
    streamed = await proxy.message(issued.key, {**body, "stream": True})
    kinds = [kind for kind, _ in events(streamed.text)]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert [r.api for r in proxy.scripted.requests] == ["openai", "openai"]
    assert proxy.scripted.requests[0].headers["authorization"] == f"Bearer {VENDOR_KEY}"
    records = await proxy.wait_records(
        lambda rows: len(rows) == 2 and all(r["status"] == "succeeded" for r in rows)
    )
    assert [(r["prompt_tokens"], r["completion_tokens"]) for r in records] == [(40, 6), (40, 6)]
    assert all(r["cost_micros"] == cost_of(40, 6) for r in records)


async def test_count_tokens_is_local_and_records_no_spend(proxy: Proxy) -> None:
    issued = await proxy.issue()
    body = {"model": "scripted-claude", "messages": [{"role": "user", "content": "hello world " * 50}]}
    response = await proxy.http.post(
        f"{proxy.url}/v1/messages/count_tokens", json=body, headers={"x-api-key": issued.key}
    )
    assert response.status_code == 200
    assert response.json()["input_tokens"] > 50
    assert proxy.scripted.requests == []
    assert proxy.records() == []


async def test_models_lists_only_what_the_key_may_use(proxy: Proxy) -> None:
    everything = await proxy.issue()
    limited = await proxy.issue(allowed_models=["scripted-claude"])
    listed = await proxy.http.get(
        f"{proxy.url}/v1/models", headers={"authorization": f"Bearer {everything.key}"}
    )
    names = {m["id"] for m in listed.json()["data"]}
    assert {"scripted-gpt", "scripted-claude", "flaky", "steady"} <= names
    assert "unconfigured" not in names
    listed = await proxy.http.get(
        f"{proxy.url}/v1/models", headers={"authorization": f"Bearer {limited.key}"}
    )
    assert [m["id"] for m in listed.json()["data"]] == ["scripted-claude"]
    assert (await proxy.http.get(f"{proxy.url}/v1/models")).status_code == 401
