"""A7: one trace links the HTTP request at the gateway, the auth gRPC call it makes, the
publication of the event that call wrote to the outbox, and the consumer of that event."""

from __future__ import annotations

import asyncio
import time

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from proliferate.kit import tracing

from ..conftest import PASSWORD, StartStack  # noqa: TID252 - the shared test helpers

_exporter = InMemorySpanExporter()
_installed = False


def exporter() -> InMemorySpanExporter:
    global _installed
    if not _installed:
        tracing.add_span_processor(SimpleSpanProcessor(_exporter))
        _installed = True
    _exporter.clear()
    return _exporter


async def test_sign_up_the_auth_call_and_the_mailer_share_one_trace(start_stack: StartStack) -> None:
    spans = exporter()
    stack = await start_stack(worker=True)
    response = await stack.client().post(
        "/v1/auth/sign-up", json={"email": "traced@example.com", "password": PASSWORD, "name": "T"}
    )
    assert response.status_code == 201
    wanted = {
        "POST /v1/auth/sign-up",  # the gateway's HTTP server span
        "proliferate.auth.v1.AuthService/SignUp",  # auth's gRPC server span
        "publish proliferate.auth.user.created",  # the outbox relay
        "consume proliferate.auth.user.created",  # the auth-mailer consumer
    }
    deadline = time.monotonic() + 20
    found: dict[str, int] = {}
    while time.monotonic() < deadline:
        found = {s.name: s.context.trace_id for s in spans.get_finished_spans() if s.name in wanted}
        if set(found) == wanted:
            break
        await asyncio.sleep(0.05)
    assert set(found) == wanted, f"spans seen: {sorted(found)}"
    assert len(set(found.values())) == 1, found
