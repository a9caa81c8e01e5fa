"""Failures: client aborts, retries and fallbacks, breaks after the first byte (§10.13, 14, 15)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from proliferate.devkit.infra import free_port
from proliferate.devkit.platform import PlatformDatabase
from proliferate.llm_proxy.bootstrap import DEFINITION
from proliferate.llm_proxy.llm_request.upstream import failure_for_status
from proliferate.scripted_model import Match, ScriptedModel, Turn, Usage

from .conftest import Proxy, cost_of, models_yaml, proxy_env

STREAM = {
    "model": "scripted-gpt",
    "stream": True,
    "messages": [{"role": "user", "content": "tell me a long story"}],
}


async def test_client_disconnect_closes_the_upstream_and_records_client_aborted(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(
        Turn(text="once upon a time " * 20, chunk_chars=5, pause_after_chunks=4, gate="never")
    )
    async with proxy.http.stream(
        "POST",
        f"{proxy.url}/v1/chat/completions",
        json=STREAM,
        headers={"authorization": f"Bearer {issued.key}"},
    ) as response:
        lines = response.aiter_lines()
        assert (await anext(lines)).startswith("data: ")
    # The client is gone: the proxy drops the vendor connection, which the scripted model sees.
    await proxy.scripted.wait_until(lambda: proxy.scripted.requests[0].client_disconnected, timeout=10)
    [record] = await proxy.wait_records(lambda rows: rows and rows[0]["status"] != "in_flight")
    assert record["status"] == "client_aborted"
    assert record["usage_estimated"] is True
    assert record["prompt_tokens"] > 0 and record["completion_tokens"] > 0
    assert record["cost_micros"] == cost_of(record["prompt_tokens"], record["completion_tokens"])
    assert len(proxy.events("proliferate.llm_proxy.spend.recorded")) == 1


async def test_upstream_500_is_retried_twice_then_falls_back(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(
        Turn(status=500, times=3, when=Match(model="flaky-upstream")),
        Turn(
            text="from the fallback",
            usage=Usage(input_tokens=5, output_tokens=3),
            when=Match(model="steady-upstream"),
        ),
    )
    response = await proxy.chat(
        issued.key, {"model": "flaky", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "from the fallback"
    assert [r.model for r in proxy.scripted.requests] == ["flaky-upstream"] * 3 + ["steady-upstream"]
    [record] = await proxy.wait_records(lambda rows: rows and rows[0]["status"] != "in_flight")
    assert record["status"] == "succeeded"
    assert record["requested_model"] == "flaky"
    assert record["routed_model"] == "openai/steady-upstream"
    assert record["cost_micros"] == cost_of(5, 3)


async def test_streaming_request_also_falls_back_before_the_first_byte(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(
        Turn(status=503, times=3, when=Match(model="flaky-upstream")),
        Turn(text="fallback stream", when=Match(model="steady-upstream")),
    )
    response = await proxy.chat(issued.key, {**STREAM, "model": "flaky"})
    assert response.status_code == 200
    assert response.text.rstrip().endswith("data: [DONE]")
    assert [r.model for r in proxy.scripted.requests][-1] == "steady-upstream"


async def test_every_attempt_failing_is_a_502_and_a_failed_record(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(Turn(status=500, times=None, error_message=f"internal boom {issued.key}"))
    response = await proxy.chat(issued.key)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"
    assert issued.key not in response.text
    assert len(proxy.scripted.requests) == 3
    [record] = await proxy.wait_records(lambda rows: rows and rows[0]["status"] != "in_flight")
    assert (record["status"], record["http_status"], record["error_code"]) == (
        "failed",
        502,
        "upstream_error",
    )
    assert record["cost_micros"] == 0
    # Nothing was generated, nothing is billed: no spend event.
    assert proxy.events("proliferate.llm_proxy.spend.recorded") == []
    [key] = proxy.query("SELECT spend_micros, request_count FROM virtual_keys")
    assert key == {"spend_micros": 0, "request_count": 1}


async def test_vendor_429_after_retries_is_429_with_retry_after(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(Turn(status=429, retry_after=17, times=None))
    response = await proxy.message(issued.key)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "17"
    assert response.json()["error"]["type"] == "rate_limited"
    assert len(proxy.scripted.requests) == 3


async def test_vendor_400_is_not_retried(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(Turn(status=400, error_message="prompt is too long", times=None))
    response = await proxy.chat(issued.key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert "prompt is too long" in response.json()["error"]["message"]
    assert len(proxy.scripted.requests) == 1


async def test_openai_failure_after_the_first_byte_is_an_error_event_without_retry(proxy: Proxy) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(
        Turn(
            text="partial answer that breaks", chunk_chars=4, break_after_chunks=4, error_message="overloaded"
        )
    )
    response = await proxy.chat(issued.key, STREAM)
    assert response.status_code == 200
    frames = [line[6:] for line in response.text.split("\n") if line.startswith("data: ")]
    assert "[DONE]" not in frames
    assert json.loads(frames[-1])["error"]["message"] == "overloaded"  # the vendor's own event, forwarded
    assert len(proxy.scripted.requests) == 1
    [record] = await proxy.wait_records(lambda rows: rows and rows[0]["status"] != "in_flight")
    assert record["status"] == "failed"
    assert record["usage_estimated"] is True
    assert record["completion_tokens"] > 0 and record["prompt_tokens"] > 0


@pytest.mark.parametrize("mode", ["close", "error"])
async def test_anthropic_failure_after_the_first_byte(proxy: Proxy, mode: str) -> None:
    issued = await proxy.issue()
    proxy.scripted.script(
        Turn(
            text="partial",
            chunk_chars=2,
            break_after_chunks=4,
            break_mode=mode,
            usage=Usage(input_tokens=321, output_tokens=50),
        )  # type: ignore[arg-type]
    )
    body = {
        "model": "scripted-claude",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "go"}],
    }
    response = await proxy.message(issued.key, body)
    assert response.status_code == 200
    frames = response.text.strip().split("\n\n")
    assert frames[0].startswith("event: message_start")
    assert frames[-1].startswith("event: error")
    error = json.loads(frames[-1].split("data: ", 1)[1])
    assert error["type"] == "error"
    if mode == "close":
        assert error["error"]["type"] == "upstream_error"  # the proxy's own event: the vendor vanished
    assert len(proxy.scripted.requests) == 1
    [record] = await proxy.wait_records(lambda rows: rows and rows[0]["status"] != "in_flight")
    assert record["status"] == "failed"
    assert record["prompt_tokens"] == 321  # from message_start: exact even though the stream broke
    assert record["completion_tokens"] > 0
    assert record["usage_estimated"] is True


async def test_a_vendor_that_does_not_answer_in_time_is_a_504(
    service_runner: Any, platform_db: PlatformDatabase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    models = tmp_path / "slow-models.yaml"
    models.write_text(models_yaml(scripted_model).replace("timeout: 30", "timeout: 0.3"))
    port = free_port()
    running = await service_runner(DEFINITION, **proxy_env(models, port))
    proxy = Proxy(
        f"http://127.0.0.1:{port}",
        f"127.0.0.1:{running.grpc_port}",
        platform_db.service_url("llm_proxy"),
        scripted_model,
        running,
    )
    try:
        issued = await proxy.issue()
        scripted_model.script(Turn(text="too late", delay_s=2, times=None))
        response = await proxy.chat(issued.key)
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "upstream_timeout"
        assert len(scripted_model.requests) == 3  # a timeout is retried like a 5xx
    finally:
        await proxy.close()


def test_vendor_status_classification() -> None:
    assert failure_for_status(408, "").error.status == 504
    assert failure_for_status(529, "").retryable
    assert not failure_for_status(401, "").retryable
    assert failure_for_status(401, "").error.status == 502  # our vendor key is wrong: not the caller's fault
    assert failure_for_status(413, "").error.status == 413


async def test_a_silent_stream_gets_keepalives_then_an_idle_timeout_event(
    service_runner: Any, platform_db: PlatformDatabase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(models_yaml(scripted_model))
    port = free_port()
    settings = {"LLM_PROXY_STREAM_KEEPALIVE_S": "0.2", "LLM_PROXY_STREAM_IDLE_TIMEOUT_S": "0.6"}
    running = await service_runner(DEFINITION, **proxy_env(models, port, **settings))
    proxy = Proxy(
        f"http://127.0.0.1:{port}",
        f"127.0.0.1:{running.grpc_port}",
        platform_db.service_url("llm_proxy"),
        scripted_model,
        running,
    )
    try:
        issued = await proxy.issue()
        scripted_model.script(Turn(text="silence follows", chunk_chars=3, pause_after_chunks=2, gate="never"))
        openai = await proxy.chat(issued.key, STREAM)
        assert openai.text.count(": ping\n\n") >= 2
        last = [line for line in openai.text.split("\n") if line.startswith("data: ")][-1]
        assert json.loads(last[6:])["error"]["code"] == "upstream_timeout"
        scripted_model.script(Turn(text="silence", chunk_chars=3, pause_after_chunks=3, gate="never"))
        body = {
            "model": "scripted-claude",
            "max_tokens": 9,
            "stream": True,
            "messages": [{"role": "user", "content": "x"}],
        }
        anthropic = await proxy.message(issued.key, body)
        assert anthropic.text.count('event: ping\ndata: {"type": "ping"}') >= 2
        assert anthropic.text.rstrip().split("\n\n")[-1].startswith("event: error")
        records = await proxy.wait_records(
            lambda rows: len(rows) == 2 and all(r["status"] != "in_flight" for r in rows)
        )
        assert [(r["status"], r["error_code"]) for r in records] == [("failed", "upstream_timeout")] * 2
    finally:
        await proxy.close()
