"""The LLM endpoint's routes: read the body (bounded), call the service, answer in the dialect.

The two routes that carry every token (chat completions, messages) are served straight from
ASGI by `LlmEdge`; everything else goes through Litestar, where those two stay declared for
the OpenAPI document. Litestar's request machinery (routing, signature parsing, the `Request`,
its send wrappers) cost more than the rest of the proxy before the vendor call (bench_proxy).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from litestar import Request, get, post
from litestar.types import ASGIApp, Receive, Scope, Send
from proliferate.kit.http import RequestContextMiddleware
from proliferate.kit.logs import get_logger
from proliferate.llm_proxy.llm_request.errors import LlmRequestError, RequestTooLarge
from proliferate.llm_proxy.llm_request.responses import BytesResponse
from proliferate.llm_proxy.llm_request.service import LlmRequestService
from proliferate.llm_proxy.model_route.catalog import Dialect

log = get_logger("proliferate.llm_proxy.edge")

# The edge enforces its own limit (`LLM_PROXY_MAX_BODY_BYTES`) so a 413 comes in the dialect.
UNBOUNDED = 1 << 62
LLM_PATHS = {"/v1/chat/completions": Dialect.OPENAI, "/v1/messages": Dialect.ANTHROPIC}


async def read_body(declared: str | None, chunks: AsyncIterator[bytes], limit: int) -> bytes:
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge()
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge()
        parts.append(chunk)
    return b"".join(parts)


async def answer(dialect: Dialect, call: Callable[[], Awaitable[Any]]) -> ASGIApp:
    try:
        response: ASGIApp = await call()
        return response
    except LlmRequestError as error:
        log.info("llm_request_refused", status=error.status, code=error.code)
        headers = {"retry-after": error.retry_after} if error.retry_after else {}
        return BytesResponse(error.status, error.body(dialect), headers)


class LlmEdge:
    """The edge's ASGI app: POSTs to the LLM routes served here, any other request by `app`."""

    def __init__(self, app: Any, service: LlmRequestService, limit: int) -> None:
        self.app = app
        self.service = service
        self.limit = limit
        self._llm = RequestContextMiddleware(self._serve)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fields: dict[str, Any] = scope  # type: ignore[assignment]  # lifespan scopes come here too
        if fields["type"] == "http" and fields["method"] == "POST" and fields["path"] in LLM_PATHS:
            await self._llm(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        dialect = LLM_PATHS[scope["path"]]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}

        async def call() -> Any:
            body = await read_body(headers.get("content-length"), _chunks(receive), self.limit)
            return await self.service.handle(dialect, headers, body)

        try:
            response = await answer(dialect, call)
        except Exception as exc:  # the service failed unexpectedly: no trace, no key in the body
            log.error("llm_request_internal_error", exc_info=exc)  # logs redact keys
            response = BytesResponse(500, LlmRequestError().body(dialect))
        await response(scope, receive, send)


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _service(request: Request[Any, Any, Any]) -> tuple[LlmRequestService, int]:
    state = request.app.state
    return state["llm_requests"], state["max_body_bytes"]


def _body(request: Request[Any, Any, Any], limit: int) -> Awaitable[bytes]:
    return read_body(request.headers.get("content-length"), request.stream(), limit)


@post("/v1/chat/completions", operation_id="createChatCompletion", request_max_body_size=UNBOUNDED)
async def chat_completions(request: Request[Any, Any, Any]) -> ASGIApp:
    """OpenAI Chat Completions, streaming or not, with a virtual key."""
    service, limit = _service(request)

    async def call() -> Any:
        return await service.handle(Dialect.OPENAI, request.headers, await _body(request, limit))

    return await answer(Dialect.OPENAI, call)


@post("/v1/messages", operation_id="createMessage", request_max_body_size=UNBOUNDED)
async def messages(request: Request[Any, Any, Any]) -> ASGIApp:
    """Anthropic Messages, streaming or not, with a virtual key."""
    service, limit = _service(request)

    async def call() -> Any:
        return await service.handle(Dialect.ANTHROPIC, request.headers, await _body(request, limit))

    return await answer(Dialect.ANTHROPIC, call)


@post("/v1/messages/count_tokens", operation_id="countMessageTokens", request_max_body_size=UNBOUNDED)
async def count_tokens(request: Request[Any, Any, Any]) -> ASGIApp:
    """Anthropic token count, computed locally; no spend."""
    service, limit = _service(request)

    async def call() -> Any:
        return await service.count_tokens(request.headers, await _body(request, limit))

    return await answer(Dialect.ANTHROPIC, call)


@get("/v1/models", operation_id="listModels")
async def models(request: Request[Any, Any, Any]) -> ASGIApp:
    """The models this key may use (OpenAI list format)."""
    service, _ = _service(request)
    return await answer(Dialect.OPENAI, lambda: service.list_models(request.headers))


ROUTES = [chat_completions, messages, count_tokens, models]
