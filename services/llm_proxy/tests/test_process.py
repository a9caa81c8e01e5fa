"""llm_proxy as a real process: a replica killed mid-stream, and SIGTERM while streaming (§10.19, 26)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from proliferate.llm_proxy.bootstrap import DEFINITION
from proliferate.scripted_model import Turn, Usage

from .conftest import Proxy, cost_of, eventually, proxy_env, write_models_file

STREAM = {"model": "scripted-gpt", "stream": True, "messages": [{"role": "user", "content": "go"}]}


async def _first_line(proxy: Proxy, key: str) -> tuple[Any, Any]:
    """Open a stream and read its first line; the context is kept open by the caller."""
    context = proxy.http.stream(
        "POST", f"{proxy.url}/v1/chat/completions", json=STREAM, headers={"authorization": f"Bearer {key}"}
    )
    response = await context.__aenter__()
    lines = response.aiter_lines()
    assert (await anext(lines)).startswith("data: ")
    return context, lines


async def test_a_replica_killed_mid_stream_leaves_a_row_the_sweeper_marks_abandoned(
    proxy_process: Any, service_runner: Any, tmp_path: Path
) -> None:
    proxy, process = proxy_process()
    process.start()
    try:
        await process.wait_ready(proxy.url)
        issued = await proxy.issue()
        proxy.scripted.script(
            Turn(text="never finished " * 10, chunk_chars=4, pause_after_chunks=2, gate="never")
        )
        context, _ = await _first_line(proxy, issued.key)
        await proxy.wait_records(lambda rows: rows and rows[0]["status"] == "in_flight")
        process.kill()  # SIGKILL: no finalization, no drain
        await asyncio.sleep(0.2)
        with_exit = proxy.records()
        assert [r["status"] for r in with_exit] == ["in_flight"]
        assert with_exit[0]["prompt_tokens"] > 0  # the stored estimate the sweeper bills
        await asyncio.gather(context.__aexit__(None, None, None), return_exceptions=True)

        # Another replica's sweeper (any in-flight row older than the threshold is abandoned).
        models = write_models_file(tmp_path, proxy.scripted)
        survivor = await service_runner(DEFINITION, **proxy_env(models, 0, LLM_PROXY_ABANDON_AFTER_S="0.001"))
        [job] = [j for j in survivor.parts.jobs if j.name == "llm-proxy-abandoned-requests"]
        await job.run()
        [record] = proxy.records()
        assert record["status"] == "abandoned" and record["usage_estimated"] is True
        assert record["cost_micros"] == cost_of(record["prompt_tokens"]) > 0
        [key] = proxy.query("SELECT spend_micros FROM virtual_keys")
        assert key["spend_micros"] == record["cost_micros"]
        assert len(proxy.events("proliferate.llm_proxy.spend.recorded")) == 1
    finally:
        await proxy.close()


async def test_sigterm_lets_the_stream_finish_and_bills_it_while_new_requests_get_503(
    proxy_process: Any,
) -> None:
    proxy, process = proxy_process(LLM_PROXY_DRAIN_TIMEOUT_S="60")
    process.start()
    try:
        await process.wait_ready(proxy.url)
        issued = await proxy.issue()
        proxy.scripted.script(
            Turn(
                text="a finished answer",
                chunk_chars=3,
                pause_after_chunks=2,
                gate="drain",
                usage=Usage(input_tokens=50, output_tokens=9),
            ),
        )
        context, lines = await _first_line(proxy, issued.key)
        process.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]

        async def refused() -> bool:
            response = await proxy.chat(issued.key)
            return response.status_code == 503 and response.json()["error"]["code"] == "shutting_down"

        await eventually(refused, timeout=10)
        assert (await proxy.http.get(f"{proxy.url}/readyz")).status_code == 503
        proxy.scripted.release("drain")
        rest = [line async for line in lines]
        await context.__aexit__(None, None, None)
        assert "data: [DONE]" in rest
        assert await asyncio.to_thread(process.process.wait, 60) == 0  # type: ignore[union-attr]
        [record] = proxy.records()
        assert record["status"] == "succeeded"
        assert record["cost_micros"] == cost_of(50, 9)
        events = [r["event"] for r in process.records()]
        assert "llm_proxy_draining" in events and "service_stopped" in events
    finally:
        await proxy.close()
