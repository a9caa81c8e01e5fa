"""OpenTelemetry traces, propagated HTTP → gRPC metadata → NATS headers.

The W3C `traceparent` travels in HTTP headers, in gRPC metadata and in NATS message
headers; the outbox stores it with the event so the consumer's span joins the trace of
the request whose transaction wrote the event.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags

__all__ = ["Span", "SpanKind"]

_TRACER_NAME = "proliferate"
_provider: TracerProvider | None = None
# Whether spans go anywhere. Until a processor is added they would only be built and dropped,
# and building one costs more than an LLM request's own work in llm_proxy (bench_proxy): then
# spans only carry ids (for log lines and propagation), as the SDK's would.
_recording = False
_ids = random.Random()  # noqa: S311 - trace ids need uniqueness, not secrecy (as the SDK's)


def setup_tracing(
    service: str, exporter: SpanExporter | None = None, *, otlp_endpoint: str | None = None
) -> None:
    """Install the process's tracer provider once; later calls only add processors."""
    global _provider, _recording
    if _provider is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            _provider = current  # installed by someone else, perhaps with its own processors
            _recording = True
        else:
            _provider = TracerProvider(resource=Resource.create({"service.name": service}))
            trace.set_tracer_provider(_provider)
    processor: SpanProcessor | None = None
    if exporter is not None:
        processor = BatchSpanProcessor(exporter)
    elif otlp_endpoint:
        processor = BatchSpanProcessor(_otlp_exporter(otlp_endpoint))
    if processor is not None:
        _provider.add_span_processor(processor)
        _recording = True


def add_span_processor(processor: SpanProcessor) -> None:
    global _recording
    setup_tracing("proliferate")
    assert _provider is not None
    _provider.add_span_processor(processor)
    _recording = True


def _otlp_exporter(endpoint: str) -> SpanExporter:  # pragma: no cover - needs a collector
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
            OTLPSpanExporter,
        )
    except ImportError as exc:
        raise RuntimeError(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp-proto-http is not installed"
        ) from exc
    exporter: SpanExporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    return exporter


_tracer: tuple[object, trace.Tracer] | None = None


def tracer() -> trace.Tracer:
    # Made once per provider: `get_tracer` builds a new Tracer each call (hot in every request).
    global _tracer
    provider = trace.get_tracer_provider()
    if _tracer is None or _tracer[0] is not provider:
        _tracer = (provider, trace.get_tracer(_TRACER_NAME))
    return _tracer[1]


def inject(carrier: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write the current trace context (`traceparent`, ...) into `carrier`."""
    propagate.inject(carrier)
    return carrier


def current_trace_headers() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    parent: Context | None = None,
) -> Iterator[Span]:
    """A span, child of `parent` (default: the current context), current while the block runs."""
    if _recording:
        with tracer().start_as_current_span(
            name, context=parent, kind=kind, attributes=dict(attributes or {})
        ) as recorded:
            yield recorded
        return
    context = parent if parent is not None else otel_context.get_current()
    above = trace.get_current_span(context).get_span_context()
    if above.is_valid:
        ids = SpanContext(
            above.trace_id, _ids.getrandbits(64) or 1, False, above.trace_flags, above.trace_state
        )
    else:  # a new trace, sampled as the SDK's default sampler would
        ids = SpanContext(_ids.getrandbits(128) or 1, _ids.getrandbits(64) or 1, False, TraceFlags(1))
    unrecorded = NonRecordingSpan(ids)
    token = otel_context.attach(trace.set_span_in_context(unrecorded, context))
    try:
        yield unrecorded
    finally:
        otel_context.detach(token)


def span_from(
    carrier: Mapping[str, str] | None,
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Any:
    """A span whose parent is the trace context found in `carrier` (headers or metadata)."""
    parent = propagate.extract(carrier if isinstance(carrier, dict) else dict(carrier or {}))
    return span(name, kind=kind, attributes=attributes, parent=parent)


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
