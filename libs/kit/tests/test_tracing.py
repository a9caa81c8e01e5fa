from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from litestar import post
from nats.aio.client import Client as NatsClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from proliferate.kit import tracing
from proliferate.kit.bus import Consumer, ConsumerSpec, Event, JetStreamPublisher, ensure_streams, on
from proliferate.kit.db import Database
from proliferate.kit.http import create_app
from proliferate.kit.outbox import Relay, add_event
from proliferate.kit.rpc import GrpcServer, ServiceClient, ServiceCredentials
from proliferate.kit.topology import STREAMS
from sqlalchemy.ext.asyncio import AsyncSession

SECRET = "trace-test-secret-0123456789abcdefghijk"
SUBJECT = "proliferate.auth.organization.updated"


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    memory = InMemorySpanExporter()
    tracing.add_span_processor(SimpleSpanProcessor(memory))
    return memory


async def test_one_trace_links_http_grpc_and_the_event_consumer(
    exporter: InMemorySpanExporter, databases: Callable[[str], Database], nats_client: NatsClient
) -> None:
    exporter.clear()
    db = databases("auth")
    js = nats_client.jetstream()
    await ensure_streams(js, STREAMS["auth"].specs("auth"))

    # auth: a gRPC method whose unit of work publishes an event
    class Emitter:
        async def Emit(self, request: struct_pb2.Struct, context: Any) -> struct_pb2.Struct:
            async with db.unit_of_work() as session:
                add_event(session, SUBJECT, request)
            return request

    def add(servicer: Emitter, server: grpc.aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            servicer.Emit, struct_pb2.Struct.FromString, lambda m: m.SerializeToString()
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.v1.Emitter", {"Emit": handler}),)
        )

    server = GrpcServer("auth", ServiceCredentials(SECRET), port=0)
    server.register("test.v1.Emitter", add, Emitter(), {"*": {"gateway"}})
    await server.start()
    client = ServiceClient("gateway", "auth", server.address, ServiceCredentials(SECRET))
    emit = client.channel.unary_unary(
        "/test.v1.Emitter/Emit", lambda m: m.SerializeToString(), struct_pb2.Struct.FromString
    )

    # gateway: an HTTP route that calls auth
    @post("/emit", operation_id="emit", status_code=202)
    async def emit_route() -> dict[str, str]:
        message = struct_pb2.Struct()
        message.update({"from": "http"})
        await client.call(emit, message)
        return {"status": "accepted"}

    consumed: list[str] = []

    async def handle(session: AsyncSession, event: Event[struct_pb2.Struct]) -> None:
        consumed.append(str(event.id))

    consumer = Consumer(
        "auth",
        ConsumerSpec("auth-trace", "PROLIFERATE_AUTH", (on(SUBJECT, struct_pb2.Struct)(handle),)),
        db,
        js,
    )
    try:
        app = create_app(service="gateway", route_handlers=[emit_route])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as http:
            response = await http.post("/emit")
        assert response.status_code == 202
        await Relay(db, JetStreamPublisher(js)).publish_batch()
        task = asyncio.create_task(consumer.run())
        for _ in range(100):
            if consumed:
                break
            await asyncio.sleep(0.05)
        consumer.stop()
        await task
    finally:
        await client.close()
        await server.stop()

    assert consumed
    spans: list[ReadableSpan] = list(exporter.get_finished_spans())
    http_span = next(s for s in spans if s.kind is SpanKind.SERVER and s.name == "POST /emit")
    grpc_span = next(s for s in spans if s.kind is SpanKind.SERVER and s.name == "test.v1.Emitter/Emit")
    consume_span = next(s for s in spans if s.kind is SpanKind.CONSUMER and s.name == f"consume {SUBJECT}")
    trace_ids = {s.context.trace_id for s in (http_span, grpc_span, consume_span)}
    assert len(trace_ids) == 1
    # The consumer's span descends from the gRPC server span through the publish span.
    publish_span = next(s for s in spans if s.kind is SpanKind.PRODUCER)
    assert publish_span.parent is not None and publish_span.parent.span_id == grpc_span.context.span_id
    assert consume_span.parent is not None and consume_span.parent.span_id == publish_span.context.span_id


def test_without_an_exporter_spans_still_carry_and_propagate_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "_recording", False)
    parent_trace, parent_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    carrier = {"traceparent": f"00-{parent_trace}-{parent_span}-01"}
    with tracing.span_from(carrier, "POST /v1/chat/completions", kind=SpanKind.SERVER) as outer:
        assert not outer.is_recording()
        assert tracing.current_trace_id() == parent_trace
        _, trace_id, span_id, flags = tracing.current_trace_headers()["traceparent"].split("-")
        assert (trace_id, flags) == (parent_trace, "01") and span_id != parent_span
        with tracing.span("inner") as inner:
            assert inner.get_span_context().trace_id == outer.get_span_context().trace_id
            assert inner.get_span_context().span_id != outer.get_span_context().span_id
        assert tracing.current_trace_id() == parent_trace
    assert tracing.current_trace_id() is None
    with tracing.span_from({}, "a new trace") as root:
        context = root.get_span_context()
        assert context.is_valid and context.trace_flags.sampled
        assert tracing.current_trace_id() == format(context.trace_id, "032x") != parent_trace
