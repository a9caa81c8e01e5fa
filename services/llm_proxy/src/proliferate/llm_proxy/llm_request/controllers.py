"""The LLM endpoint's routes: read the body (bounded), call the service, answer in the dialect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, get, post
from litestar.types import ASGIApp
from proliferate.kit.logs import get_logger
from proliferate.llm_proxy.llm_request.errors import LlmRequestError, RequestTooLarge
from proliferate.llm_proxy.llm_request.responses import BytesResponse
from proliferate.llm_proxy.llm_request.service import LlmRequestService
from proliferate.llm_proxy.model_route.catalog import Dialect

log = get_logger("proliferate.llm_proxy.edge")

# The edge enforces its own limit (`LLM_PROXY_MAX_BODY_BYTES`) so a 413 comes in the dialect.
UNBOUNDED = 1 << 62


async def read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


async def answer(dialect: Dialect, call: Callable[[], Awaitable[Any]]) -> ASGIApp:
    try:
        response: ASGIApp = await call()
        return response
    except LlmRequestError as error:
        log.info("llm_request_refused", status=error.status, code=error.code)
        headers = {"retry-after": error.retry_after} if error.retry_after else {}
        return BytesResponse(error.status, error.body(dialect), headers)


def _service(request: Request[Any, Any, Any]) -> tuple[LlmRequestService, int]:
    state = request.app.state
    return state["llm_requests"], state["max_body_bytes"]


@post("/v1/chat/completions", operation_id="createChatCompletion", request_max_body_size=UNBOUNDED)
async def chat_completions(request: Request[Any, Any, Any]) -> ASGIApp:
    """OpenAI Chat Completions, streaming or not, with a virtual key."""
    service, limit = _service(request)

    async def call() -> Any:
        return await service.handle(Dialect.OPENAI, request.headers, await read_body(request, limit))

    return await answer(Dialect.OPENAI, call)


@post("/v1/messages", operation_id="createMessage", request_max_body_size=UNBOUNDED)
async def messages(request: Request[Any, Any, Any]) -> ASGIApp:
    """Anthropic Messages, streaming or not, with a virtual key."""
    service, limit = _service(request)

    async def call() -> Any:
        return await service.handle(Dialect.ANTHROPIC, request.headers, await read_body(request, limit))

    return await answer(Dialect.ANTHROPIC, call)


@post("/v1/messages/count_tokens", operation_id="countMessageTokens", request_max_body_size=UNBOUNDED)
async def count_tokens(request: Request[Any, Any, Any]) -> ASGIApp:
    """Anthropic token count, computed locally; no spend."""
    service, limit = _service(request)

    async def call() -> Any:
        return await service.count_tokens(request.headers, await read_body(request, limit))

    return await answer(Dialect.ANTHROPIC, call)


@get("/v1/models", operation_id="listModels")
async def models(request: Request[Any, Any, Any]) -> ASGIApp:
    """The models this key may use (OpenAI list format)."""
    service, _ = _service(request)
    return await answer(Dialect.OPENAI, lambda: service.list_models(request.headers))


ROUTES = [chat_completions, messages, count_tokens, models]
