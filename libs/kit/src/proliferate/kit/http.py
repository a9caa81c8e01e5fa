"""HTTP edges (Litestar): typed JSON errors, request ids, traces, body limits, probes.

Every error leaves as `{"error": {"code", "message", "details", "request_id"}}` with the
status of `kit.errors.WIRE`; malformed JSON is 400 `invalid_json`, a body of the wrong
shape 422 `validation_failed` naming the fields, an oversized body 413
`payload_too_large`, and anything unexpected 500 `internal_error` with no stack trace.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get
from litestar.config.cors import CORSConfig
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from proliferate.kit import tracing
from proliferate.kit.errors import DomainError, http_status
from proliferate.kit.ids import REQUEST_ID_HEADER, uuid7, valid_request_id
from proliferate.kit.logs import bind_context, clear_context, get_logger, redact

log = get_logger("proliferate.kit.http")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ErrorBody(msgspec.Struct, kw_only=True):
    code: str
    message: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)
    request_id: str | None = None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


def request_id_of(request: Request[Any, Any, Any]) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def error_response(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[ErrorEnvelope]:
    body = ErrorEnvelope(
        ErrorBody(
            code=code, message=redact(message), details=dict(details or {}), request_id=request_id_of(request)
        )
    )
    return Response(body, status_code=status, headers=dict(headers or {}), media_type="application/json")


def _domain_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorEnvelope]:
    assert isinstance(exc, DomainError)
    status = http_status(exc.kind)
    headers: dict[str, str] = {}
    retry_after = exc.details.get("retry_after_s")
    if status == 429 and retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    return error_response(request, status, exc.code, exc.message, exc.details, headers)


def _validation_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorEnvelope]:
    assert isinstance(exc, ValidationException)
    extra = exc.extra if isinstance(exc.extra, list) else []
    if any(isinstance(i, dict) and i.get("key") == "data" and i.get("message") == "'data'" for i in extra):
        return error_response(request, 400, "invalid_json", "the request needs a JSON body")
    fields = [
        {"field": _field_name(item), "message": str(item.get("message", ""))}
        for item in extra
        if isinstance(item, dict)
    ]
    return error_response(
        request, 422, "validation_failed", "the request does not match the schema", {"fields": fields}
    )


def _field_name(item: Mapping[str, Any]) -> str:
    key = item.get("key")
    if key:
        return str(key)
    found = re.search(r"at `\$\.?([^`]*)`", str(item.get("message", "")))
    return found.group(1) if found else ""


def _http_exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorEnvelope]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    # Litestar turns any body it cannot decode into a 400 caused by a SerializationException
    # ("JSON is malformed", "Input data was truncated", ...): all of them are invalid JSON.
    if status == 400 and (
        str(exc.detail).startswith("JSON is malformed") or isinstance(exc.__cause__, SerializationException)
    ):
        return error_response(request, 400, "invalid_json", "the request body is not valid JSON")
    code = _STATUS_CODES.get(status, "http_error")
    message = exc.detail if status < 500 else "internal error"
    headers = dict(exc.headers or {})
    return error_response(request, status, code, message, None, headers)


def _internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorEnvelope]:
    log.error("http_internal_error", path=request.url.path, exc_info=exc)
    return error_response(request, 500, "internal_error", "internal error")


EXCEPTION_HANDLERS: dict[type[Exception] | int, Callable[..., Any]] = {
    DomainError: _domain_error_handler,
    ValidationException: _validation_handler,
    HTTPException: _http_exception_handler,
    Exception: _internal_error_handler,
}


class RequestContextMiddleware:
    """Request id, trace span and log context for every HTTP request (ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        incoming = headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if valid_request_id(incoming) else str(uuid7())
        scope.setdefault("state", {})["request_id"] = request_id
        method = scope.get("method", "GET")
        path = scope.get("path", "")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # An edge that names its own request ids (llm_proxy: the spend record's) keeps them.
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        with tracing.span_from(
            headers,
            f"{method} {path}",
            kind=tracing.SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        ):
            bind_context(request_id=request_id)
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                clear_context(["request_id"])


@get("/healthz", operation_id="healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> dict[str, str]:
    """Liveness of this process only."""
    return {"status": "ok"}


Check = Callable[[], Awaitable[str]]
READY_VALUES = frozenset({"ok", "SERVING"})


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, str]


def readiness_route(checks: Mapping[str, Check], *, timeout: float = 2.0) -> Any:
    """`GET /readyz`: runs every check concurrently; 200 only when all answer ok/SERVING."""
    import asyncio

    async def run(name: str, check: Check) -> tuple[str, str]:
        try:
            return name, await asyncio.wait_for(check(), timeout=timeout)
        except TimeoutError:
            return name, "TIMEOUT"
        except Exception as exc:
            return name, f"ERROR: {type(exc).__name__}"

    @get("/readyz", operation_id="readyz", include_in_schema=False)
    async def readyz() -> Response[Readiness]:
        results = dict(await asyncio.gather(*(run(n, c) for n, c in checks.items())))
        ready = all(v in READY_VALUES for v in results.values())
        body = Readiness(status="ready" if ready else "not_ready", checks=results)
        return Response(body, status_code=200 if ready else 503)

    return readyz


@get("/openapi.json", operation_id="openapi", include_in_schema=False, sync_to_thread=False)
def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The OpenAPI document of this edge."""
    schema: dict[str, Any] = request.app.openapi_schema.to_schema()
    return schema


def create_app(
    *,
    service: str,
    route_handlers: Sequence[Any],
    on_startup: Sequence[Callable[[], Awaitable[None] | None]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[None] | None]] = (),
    max_body_bytes: int = 1024 * 1024,
    cors_origins: Sequence[str] = (),
    with_healthz: bool = True,
    openapi_title: str | None = None,
    openapi_version: str = "1.0.0",
    state: Mapping[str, Any] | None = None,
    **litestar_kwargs: Any,
) -> Litestar:
    from litestar.datastructures import State

    handlers = [*route_handlers, openapi_json, *([healthz] if with_healthz else [])]
    cors = CORSConfig(allow_origins=list(cors_origins), allow_credentials=True) if cors_origins else None
    return Litestar(
        route_handlers=handlers,
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[RequestContextMiddleware],
        request_max_body_size=max_body_bytes,
        cors_config=cors,
        openapi_config=OpenAPIConfig(
            title=openapi_title or f"Proliferate {service}",
            version=openapi_version,
            path="/schema",
        ),
        state=State(dict(state or {})),
        debug=False,
        logging_config=None,
        **litestar_kwargs,
    )
