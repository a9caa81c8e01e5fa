"""Per-key budgets: refusal, top-up, and the bound under concurrency (§10.12, issue 5 D3)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from proliferate.protos.events.v1 import billing_pb2
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2 as pb
from proliferate.scripted_model import Turn, Usage

from .conftest import Proxy, cost_of, eventually, publish

USAGE = Usage(input_tokens=1000, output_tokens=100)
COST = cost_of(1000, 100)


async def test_budget_reached_is_402_and_a_credit_raises_it(proxy: Proxy, nats_client: NatsClient) -> None:
    org = uuid.uuid4()
    billing_key = await proxy.issue(org, max_budget_micros=COST, budget_source=pb.BUDGET_SOURCE_BILLING)
    capped_key = await proxy.issue(org, max_budget_micros=COST, budget_source=pb.BUDGET_SOURCE_CALLER)
    proxy.scripted.script(Turn(text="ok", usage=USAGE, times=None))
    assert (
        await proxy.chat(billing_key.key)
    ).status_code == 200  # spend 0 < budget: served (overshoot ≤ one request)
    assert (await proxy.chat(capped_key.key)).status_code == 200
    refused = await proxy.chat(billing_key.key)
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "budget_exceeded"
    assert (await proxy.message(capped_key.key)).json()["error"]["type"] == "budget_exceeded"
    await proxy.wait_records(lambda rows: len(rows) == 2 and all(r["status"] == "succeeded" for r in rows))

    credited = billing_pb2.AccountCredited(
        organization_id=str(org), delta_micro=10_000_000, llm_budget_micros=5 * COST
    )
    await publish(nats_client, "proliferate.billing.account.credited", credited)
    await eventually(lambda: _ok(proxy, billing_key.key), timeout=8)
    rows = {
        r["key_prefix"]: r["max_budget_micros"]
        for r in proxy.query("SELECT key_prefix, max_budget_micros FROM virtual_keys")
    }
    assert rows[billing_key.key_prefix] == COST + 5 * COST  # spend + the new spendable budget
    assert rows[capped_key.key_prefix] == COST  # a caller's cap is never raised by billing
    assert (await proxy.chat(capped_key.key)).status_code == 402

    # A stale, smaller credit never lowers a budget.
    await publish(
        nats_client,
        "proliferate.billing.account.credited",
        billing_pb2.AccountCredited(organization_id=str(org), llm_budget_micros=1),
    )
    await eventually(lambda: proxy.query("SELECT count(*) AS n FROM processed_events")[0]["n"] >= 2)
    [row] = proxy.query(
        "SELECT max_budget_micros FROM virtual_keys WHERE key_prefix = %s", billing_key.key_prefix
    )
    assert row["max_budget_micros"] >= 6 * COST


async def _ok(proxy: Proxy, key: str) -> bool:
    return (await proxy.chat(key)).status_code == 200


@dataclass
class Attempt:
    sent: float
    ended: float
    status: int


async def test_fifty_concurrent_streams_overshoot_at_most_by_those_in_flight(proxy: Proxy) -> None:
    budget = 10 * COST
    issued = await proxy.issue(max_budget_micros=budget)
    proxy.scripted.script(
        Turn(
            text="a streamed answer of some length",
            chunk_chars=4,
            chunk_delay_s=0.002,
            usage=USAGE,
            times=None,
        )
    )
    body = {"model": "scripted-gpt", "stream": True, "messages": [{"role": "user", "content": "spend"}]}
    attempts: list[Attempt] = []

    async def worker(index: int) -> None:
        await asyncio.sleep(index * 0.004)
        while True:
            sent = time.monotonic()
            response = await proxy.chat(issued.key, body)
            attempts.append(Attempt(sent, time.monotonic(), response.status_code))
            if response.status_code == 402:
                return
            assert response.status_code == 200, response.text
            assert response.text.rstrip().endswith("data: [DONE]")

    await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(50))), timeout=120)

    served = sorted((a for a in attempts if a.status == 200), key=lambda a: a.ended)
    # The moment the client saw the budget reached: the end of the stream that crossed it.
    spent, crossed_at = 0, None
    for attempt in served:
        spent += COST
        if spent >= budget:
            crossed_at = attempt.ended
            break
    assert crossed_at is not None, "the budget was never reached"
    in_flight = [a for a in served if a.sent <= crossed_at < a.ended]
    later = [a for a in attempts if a.sent > crossed_at]
    assert later and all(a.status == 402 for a in later), (
        "a request sent after the budget was reached was served"
    )

    records = await proxy.wait_records(
        lambda rows: len(rows) == len(served) and all(r["status"] == "succeeded" for r in rows)
    )
    total = sum(r["cost_micros"] for r in records)
    [key] = proxy.query("SELECT spend_micros FROM virtual_keys")
    assert key["spend_micros"] == total == len(served) * COST
    assert total - budget <= len(in_flight) * COST
    assert len({a.status for a in attempts}) == 2
