"""Opening a response from the vendor: retries and fallbacks before the first byte, two paths.

- **pass-through** (the upstream speaks the caller's dialect): the allow-listed body goes out
  with the vendor key; the response bytes come back untouched (`http_client`, no parsing).
- **litellm** (another dialect or vendor): litellm translates the request and the response.

Each attempt either yields an `Opened` upstream whose first chunk has arrived, or raises
`UpstreamFailure`. 408/429/5xx and network errors are retried `num_retries` times,
`retry_after` apart, then the next fallback route is tried; other 4xx are answered at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from proliferate.kit.logs import get_logger
from proliferate.llm_proxy.llm_request import schemas
from proliferate.llm_proxy.llm_request.errors import (
    InvalidRequest,
    LlmRequestError,
    RateLimited,
    RequestTooLarge,
    UpstreamError,
    UpstreamTimeout,
    scrub,
)
from proliferate.llm_proxy.llm_request.http_client import HttpClient, Response
from proliferate.llm_proxy.model_route.catalog import Dialect, RetryPolicy, Route

log = get_logger("proliferate.llm_proxy.upstream")

FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")
ANTHROPIC_VERSION = "2023-06-01"


class UpstreamFailure(Exception):
    def __init__(self, error: LlmRequestError, *, retryable: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.retryable = retryable


def _vendor_message(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except ValueError:
        return scrub(body.decode("utf-8", "replace"))
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return scrub(error["message"])
    return scrub(str(payload))


def failure_for_status(status: int, message: str, retry_after: str | None = None) -> UpstreamFailure:
    if status == 429:
        return UpstreamFailure(RateLimited(retry_after=retry_after), retryable=True)
    if status == 408:
        return UpstreamFailure(UpstreamTimeout(), retryable=True)
    if status >= 500:
        return UpstreamFailure(UpstreamError(), retryable=True)
    if status == 413:
        return UpstreamFailure(RequestTooLarge(f"the vendor refused the request: {message}"), retryable=False)
    if status in (400, 422):
        return UpstreamFailure(InvalidRequest(f"the vendor refused the request: {message}"), retryable=False)
    # 401/403/404 from the vendor: our deployment is misconfigured, not the caller's request.
    return UpstreamFailure(UpstreamError(), retryable=False)


class Opened:
    """A vendor response whose first chunk (or whole body) has arrived."""

    def __init__(self, route: Route, first: bytes) -> None:
        self.route = route
        self.first = first

    async def next_chunk(self, timeout: float) -> bytes | None:
        """The next bytes; `b""` at the end; None when nothing came within `timeout`."""
        raise NotImplementedError

    async def close(self) -> None:
        """Drop the vendor connection (a client that went away must not keep it busy)."""

    async def release(self) -> None:
        """Done with a response read to its end: its connection may serve another request."""
        await self.close()


class _HttpOpened(Opened):
    def __init__(self, route: Route, first: bytes, response: Response) -> None:
        super().__init__(route, first)
        self.response = response

    async def next_chunk(self, timeout: float) -> bytes | None:
        return await self.response.chunk(timeout)

    async def close(self) -> None:
        self.response.close()

    async def release(self) -> None:
        self.response.release()


class _IteratorOpened(Opened):
    """A litellm stream; `__anext__` runs as a task so a keep-alive timeout never cancels it."""

    def __init__(self, route: Route, first: bytes, iterator: AsyncIterator[bytes]) -> None:
        super().__init__(route, first)
        self.iterator = iterator
        self._next: asyncio.Future[bytes] | None = None

    async def next_chunk(self, timeout: float) -> bytes | None:
        if self._next is None:
            self._next = asyncio.ensure_future(anext(self.iterator, b""))
        done, _ = await asyncio.wait({self._next}, timeout=timeout)
        if not done:
            return None
        future, self._next = self._next, None
        return future.result()

    async def close(self) -> None:
        if self._next is not None:
            self._next.cancel()
        closer = getattr(self.iterator, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


class Upstream:
    def __init__(self, policy: RetryPolicy, litellm: Callable[[], Any]) -> None:
        self.policy = policy
        self._litellm = litellm
        self._http: HttpClient | None = None

    async def start(self) -> None:
        if self._http is None:
            self._http = HttpClient()

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def open(
        self,
        dialect: Dialect,
        request: schemas.LlmRequest,
        candidates: list[Route],
        headers: Mapping[str, str],
    ) -> Opened:
        """The first route (then fallbacks) that answers, each tried 1 + num_retries times."""
        last: UpstreamFailure | None = None
        for route in candidates:
            if not route.available:
                continue
            for attempt in range(self.policy.num_retries + 1):
                try:
                    return await self._open_once(dialect, request, route, headers)
                except UpstreamFailure as failure:
                    last = failure
                    log.warning(
                        "upstream_attempt_failed",
                        route=route.name,
                        attempt=attempt + 1,
                        status=failure.error.status,
                        code=failure.error.code,
                        retryable=failure.retryable,
                    )
                    if not failure.retryable:
                        raise
                    if attempt < self.policy.num_retries:
                        await asyncio.sleep(self.policy.retry_after_s)
        raise last or UpstreamFailure(UpstreamError(), retryable=False)

    async def _open_once(
        self, dialect: Dialect, request: schemas.LlmRequest, route: Route, headers: Mapping[str, str]
    ) -> Opened:
        if route.dialect is dialect:
            return await self._open_passthrough(dialect, request, route, headers)
        return await self._open_litellm(dialect, request, route)

    async def _open_passthrough(
        self, dialect: Dialect, request: schemas.LlmRequest, route: Route, headers: Mapping[str, str]
    ) -> Opened:
        assert self._http is not None, "Upstream.start() was not called"
        out = {"content-type": "application/json", "accept-encoding": "identity"}
        if dialect is Dialect.ANTHROPIC:
            out["x-api-key"] = route.api_key or ""
            out["anthropic-version"] = headers.get("anthropic-version") or ANTHROPIC_VERSION
            if headers.get("anthropic-beta"):
                out["anthropic-beta"] = headers["anthropic-beta"]
        else:
            out["authorization"] = f"Bearer {route.api_key or ''}"
        try:
            response = await self._http.post(
                route.passthrough_url(dialect),
                out,
                schemas.upstream_body(request, route.model_id),
                connect_timeout=self.policy.connect_timeout_s,
                timeout=self.policy.timeout_s,
            )
        except TimeoutError:
            raise UpstreamFailure(UpstreamTimeout(), retryable=True) from None
        except OSError as exc:
            log.warning("upstream_unreachable", route=route.name, error=scrub(str(exc)))
            raise UpstreamFailure(UpstreamError(), retryable=True) from None
        try:
            if response.status >= 400:
                body = await response.read()
                message = _vendor_message(body)
                log.warning(
                    "upstream_error_status", route=route.name, status=response.status, message=message
                )
                raise failure_for_status(response.status, message, response.headers.get("retry-after"))
            if not request.is_stream:
                return Opened(route, await response.read())
            first = await response.chunk()
            if not first:
                raise UpstreamFailure(UpstreamError("the vendor closed the stream at once"), retryable=True)
            return _HttpOpened(route, first, response)
        except UpstreamFailure:
            response.close()
            raise
        except TimeoutError:
            response.close()
            raise UpstreamFailure(UpstreamTimeout(), retryable=True) from None
        except OSError as exc:
            response.close()
            log.warning("upstream_failed_before_first_byte", route=route.name, error=scrub(str(exc)))
            raise UpstreamFailure(UpstreamError(), retryable=True) from None

    async def _open_litellm(self, dialect: Dialect, request: schemas.LlmRequest, route: Route) -> Opened:
        litellm = self._litellm()
        params = schemas.as_builtins(request)
        params.pop("model", None)
        params.pop("stream_options", None)
        common: dict[str, Any] = {
            "model": route.upstream_model,
            "api_key": route.api_key,
            "api_base": route.api_base,
            "timeout": self.policy.timeout_s,
            "num_retries": 0,
            "max_retries": 0,
            **route.litellm_params,
        }
        try:
            if dialect is Dialect.OPENAI:
                if request.is_stream:
                    params["stream_options"] = {"include_usage": True}
                result = await litellm.acompletion(**params, **common)
                if not request.is_stream:
                    return Opened(route, result.model_dump_json(exclude_none=True).encode())
                iterator: AsyncIterator[bytes] = _openai_frames(result)
            else:
                result = await litellm.anthropic_messages(**params, **common)
                if not request.is_stream:
                    body = {k: v for k, v in dict(result).items() if not str(k).startswith("_")}
                    return Opened(route, json.dumps(body).encode())
                iterator = _anthropic_frames(result)
            first = await anext(iterator, b"")
        except UpstreamFailure:
            raise
        except Exception as exc:
            raise _litellm_failure(route, exc) from None
        if not first:
            raise UpstreamFailure(UpstreamError("the vendor closed the stream at once"), retryable=True)
        return _IteratorOpened(route, first, iterator)


async def _openai_frames(stream: Any) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield b"data: " + chunk.model_dump_json(exclude_none=True).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


async def _anthropic_frames(stream: Any) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk if isinstance(chunk, bytes) else str(chunk).encode()


def _litellm_failure(route: Route, exc: Exception) -> UpstreamFailure:
    status = getattr(exc, "status_code", None)
    message = scrub(str(getattr(exc, "message", exc)))
    log.warning(
        "upstream_error_litellm",
        route=route.name,
        status=status,
        error_type=type(exc).__name__,
        message=message,
    )
    if isinstance(exc, TimeoutError) or type(exc).__name__ == "Timeout":
        return UpstreamFailure(UpstreamTimeout(), retryable=True)
    if isinstance(status, int):
        response = getattr(exc, "response", None)
        retry_after = (
            response.headers.get("retry-after")
            if response is not None and hasattr(response, "headers")
            else None
        )
        return failure_for_status(status, message, retry_after)
    return UpstreamFailure(UpstreamError(), retryable=True)
