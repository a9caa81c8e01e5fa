"""One LLM request, from the key to the spend record (llm-proxy.md §5.2, §5.3).

Hot path before the vendor call: a cache lookup, the org-block set, a budget comparison, one
JSON decode. A request still running `IN_FLIGHT_DELAY_S` after it started gets its `in_flight`
row then (prompt tokens counted, from a task): what the sweeper bills if this replica dies.
One that ends sooner is written once, when it finalizes (after the last byte was sent), and
its prompt is only counted if the vendor's usage did not say.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from proliferate.kit.db import Database
from proliferate.kit.ids import uuid7
from proliferate.kit.logs import bind_context, get_logger, redact
from proliferate.llm_proxy.llm_request import schemas, sse
from proliferate.llm_proxy.llm_request.errors import (
    BudgetExceeded,
    InvalidApiKey,
    LlmRequestError,
    ModelNotAllowed,
    ModelNotFound,
    ModelUnavailable,
    OrgPaused,
    ShuttingDown,
    UpstreamError,
    UpstreamTimeout,
    scrub,
)
from proliferate.llm_proxy.llm_request.responses import BytesResponse, StreamRelay
from proliferate.llm_proxy.llm_request.upstream import Opened, Upstream, UpstreamFailure
from proliferate.llm_proxy.model_route.catalog import Dialect, ModelCatalog, Route, Usage
from proliferate.llm_proxy.org_block.service import OrgBlockSet
from proliferate.llm_proxy.spend_record.service import SpendRecordDraft
from proliferate.llm_proxy.spend_record.writer import SpendWriter
from proliferate.llm_proxy.virtual_key.cache import KeyCache, KeyGrant

log = get_logger("proliferate.llm_proxy.llm_request")

IN_FLIGHT_DELAY_S = 0.5


class TokenCounter:
    """Local token counts (litellm's tokenizers), off the event loop."""

    def __init__(self, litellm: Callable[[], Any]) -> None:
        self._litellm = litellm

    def count(self, model: str, text: str) -> int:
        if not text:
            return 0
        try:
            return int(self._litellm().token_counter(model=model, text=text))
        except Exception:
            return max(1, len(text) // 4)

    async def count_async(self, model: str, text: str) -> int:
        return await asyncio.to_thread(self.count, model, text)

    async def prompt(self, model: str, request: msgspec.Struct) -> int:
        return await asyncio.to_thread(self._prompt, model, request)

    def _prompt(self, model: str, request: msgspec.Struct) -> int:
        values = schemas.as_builtins(request)
        parts = [values.get("system"), values.get("messages"), values.get("tools")]
        return self.count(model, "\n".join(_strings(part) for part in parts if part))


def _strings(value: Any) -> str:
    """Every string inside a JSON value, joined: what the model reads, for counting."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(_strings(v) for v in value.values())
    if isinstance(value, list):
        return "\n".join(_strings(v) for v in value)
    return ""


def _allowed(grant: KeyGrant, route: Route) -> bool:
    allowed = grant.allowed_models
    return allowed is None or route.name in allowed or bool(allowed.intersection(route.aliases))


def credential(headers: Mapping[str, str]) -> str:
    """The key from `x-api-key` (Anthropic SDKs) or `Authorization: Bearer` (OpenAI SDKs)."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    authorization = headers.get("authorization", "")
    return authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""


@dataclass
class _Request:
    """One request's state while it is served."""

    dialect: Dialect
    grant: KeyGrant
    request: schemas.LlmRequest
    route: Route
    draft: SpendRecordDraft
    estimate: asyncio.Task[int] | None = None  # counting for the in-flight row, once started
    in_flight_timer: asyncio.TimerHandle | None = None
    opened: Opened | None = None
    reader: sse.StreamReader | None = None
    priced: bool = False

    @property
    def headers(self) -> dict[str, str]:
        return {"x-request-id": str(self.draft.request_id)}


class LlmRequestService:
    def __init__(
        self,
        db: Database,
        catalog: ModelCatalog,
        keys: KeyCache,
        blocks: OrgBlockSet,
        upstream: Upstream,
        counter: TokenCounter,
        writer: SpendWriter,
        *,
        keepalive_s: float = 15.0,
        idle_timeout_s: float = 120.0,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.keys = keys
        self.blocks = blocks
        self.upstream = upstream
        self.counter = counter
        self.writer = writer
        self.keepalive_s = keepalive_s
        self.idle_timeout_s = idle_timeout_s
        self.draining = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- admission -------------------------------------------------------------------------

    async def authenticate(self, headers: Mapping[str, str]) -> KeyGrant:
        if self.draining:
            raise ShuttingDown()
        grant = await self.keys.lookup(credential(headers))
        if grant is None:
            raise InvalidApiKey()
        return grant

    def admit(self, grant: KeyGrant) -> None:
        if grant.organization_id in self.blocks:
            raise OrgPaused()
        budget = grant.max_budget_micros
        if budget is not None and self.keys.spend_of(grant) >= budget:
            raise BudgetExceeded()

    def route_for(self, grant: KeyGrant, model: str) -> Route:
        route = self.catalog.resolve(model)
        if route is None:
            raise ModelNotFound(f"no such model: {scrub(model[:100])}")
        if not _allowed(grant, route):
            raise ModelNotAllowed()
        if not route.available:
            raise ModelUnavailable()
        return route

    # --- side routes -----------------------------------------------------------------------

    async def count_tokens(self, headers: Mapping[str, str], body: bytes) -> BytesResponse:
        """`/v1/messages/count_tokens`: counted here, no vendor call, no spend."""
        grant = await self.authenticate(headers)
        request = schemas.decode_count(body)
        route = self.catalog.resolve(request.model)
        if route is None:
            raise ModelNotFound(f"no such model: {scrub(request.model[:100])}")
        if not _allowed(grant, route):
            raise ModelNotAllowed()
        count = await self.counter.prompt(route.upstream_model, request)
        return BytesResponse(200, msgspec.json.encode({"input_tokens": count}))

    async def list_models(self, headers: Mapping[str, str]) -> BytesResponse:
        """`/v1/models`: the models this key may use, in OpenAI's list format."""
        grant = await self.authenticate(headers)
        data = [
            {"id": route.name, "object": "model", "created": 0, "owned_by": route.provider}
            for route in self.catalog.routes.values()
            if route.available and _allowed(grant, route)
        ]
        return BytesResponse(200, msgspec.json.encode({"object": "list", "data": data}))

    # --- one request -----------------------------------------------------------------------

    async def handle(self, dialect: Dialect, headers: Mapping[str, str], body: bytes) -> Any:
        grant = await self.authenticate(headers)
        self.admit(grant)
        request = schemas.decode(dialect, body)
        route = self.route_for(grant, request.model)
        draft = SpendRecordDraft(
            request_id=uuid7(),
            virtual_key_id=grant.id,
            organization_id=grant.organization_id,
            session_id=grant.session_id,
            run_id=grant.run_id,
            api=dialect.api,
            requested_model=request.model,
            routed_model=route.upstream_model,
            stream=request.is_stream,
            started_at=datetime.now(UTC),
        )
        bind_context(llm_request_id=str(draft.request_id), key_prefix=grant.key_prefix)
        state = _Request(dialect, grant, request, route, draft)
        self._begin()
        try:
            state.in_flight_timer = asyncio.get_running_loop().call_later(
                IN_FLIGHT_DELAY_S, self._start_in_flight, state
            )
            state.opened = await self.upstream.open(dialect, request, self.catalog.candidates(route), headers)
        except UpstreamFailure as failure:
            await self._fail_before_first_byte(state, failure.error)
            raise failure.error from None
        except BaseException:
            await self._fail_before_first_byte(state, UpstreamError())
            raise
        state.draft.routed_model = state.opened.route.upstream_model
        state.draft.first_byte_at = datetime.now(UTC)
        if not request.is_stream:
            return await self._whole(state)
        state.reader = (
            sse.AnthropicStreamReader()
            if dialect is Dialect.ANTHROPIC
            else sse.OpenAIStreamReader(forward_usage=request.wants_usage)
        )
        return StreamRelay(
            state.headers,
            self._first(state),
            lambda write: self._pump(state, write),
            lambda aborted: self._finish(state, aborted),
        )

    async def _whole(self, state: _Request) -> BytesResponse:
        assert state.opened is not None
        body = state.opened.first
        usage = sse.usage_of_body(body, state.dialect is Dialect.ANTHROPIC)
        if usage is None:
            usage = await self._estimated(state, body.decode("utf-8", "replace"))
        else:
            state.draft.usage = usage
        self._price(state, "succeeded", 200)

        async def after() -> None:
            await self._finalize(state)

        return BytesResponse(200, body, state.headers, after=after)

    def _first(self, state: _Request) -> bytes:
        """What the first chunk forwards: sent right after the headers, with no task switch."""
        assert state.opened is not None
        try:
            return self._feed(state, state.opened.first)
        except Exception as exc:
            self._stream_broke(state, exc)
            return UpstreamError().stream_event(state.dialect)

    async def _pump(self, state: _Request, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Forward every later chunk as it arrives; price as soon as usage is known."""
        opened, reader = state.opened, state.reader
        assert opened is not None and reader is not None
        try:
            idle = 0.0
            while not (reader.done or reader.error or state.draft.error_code):
                chunk = await opened.next_chunk(self.keepalive_s)
                if chunk is None:
                    idle += self.keepalive_s
                    if idle >= self.idle_timeout_s:
                        await write(UpstreamTimeout().stream_event(state.dialect))
                        state.draft.error_code = UpstreamTimeout.code
                        break
                    await write(reader.keepalive)
                    continue
                idle = 0.0
                if not chunk:
                    break
                out = self._feed(state, chunk)
                if out:
                    await write(out)
        except Exception as exc:  # the vendor connection or litellm failed mid-stream
            self._stream_broke(state, exc)
            with contextlib.suppress(Exception):
                await write(UpstreamError().stream_event(state.dialect))

    def _feed(self, state: _Request, chunk: bytes) -> bytes:
        reader = state.reader
        assert reader is not None
        out = reader.feed(chunk)
        if reader.usage_complete and not state.priced and reader.usage is not None:
            # Known before the last bytes go out: the next budget check on this replica sees it.
            state.draft.usage = reader.usage
            self._price(state, "succeeded", 200)
        return out

    def _stream_broke(self, state: _Request, exc: BaseException) -> None:
        log.warning(
            "upstream_stream_broke",
            route=state.route.name,
            error_type=type(exc).__name__,
            error=redact(str(exc))[:300],
        )
        state.draft.error_code = UpstreamError.code

    async def _finish(self, state: _Request, aborted: bool) -> None:
        self._closing(state)
        reader = state.reader
        ok = reader is not None and reader.done and not reader.error and state.draft.error_code is None
        try:
            if not ok and state.opened is not None:
                await state.opened.close()
            if not (ok and state.priced):
                if not state.priced:
                    # Ended early, or without usage: count what was sent and what came back.
                    text = reader.completion_text() if reader is not None else ""
                    await self._estimated(state, text, reader.usage if reader is not None else None)
                if ok:
                    self._price(state, "succeeded", 200)
                elif aborted:
                    self._price(state, "client_aborted", 200, error_code="client_aborted")
                else:
                    self._price(state, "failed", 200, error_code=state.draft.error_code or UpstreamError.code)
            await self._finalize(state)
        finally:
            if state.opened is not None:
                with contextlib.suppress(Exception):
                    await state.opened.release()  # a no-op once closed above

    # --- accounting ------------------------------------------------------------------------

    def _start_in_flight(self, state: _Request) -> None:
        # Counting tokens costs CPU the request's own bytes wait for, and most requests end
        # with the vendor's usage: only a request still running after the delay pays for it.
        state.in_flight_timer = None
        state.estimate = self._spawn(self._record_in_flight(state))

    def _closing(self, state: _Request) -> None:
        """The request's end is being accounted: no in-flight row is needed any more."""
        if state.in_flight_timer is not None:
            state.in_flight_timer.cancel()
            state.in_flight_timer = None

    async def _record_in_flight(self, state: _Request) -> int:
        estimate = await self.counter.prompt(state.route.upstream_model, state.request)
        row = SpendRecordDraft(**{**state.draft.__dict__, "usage": Usage(prompt_tokens=estimate)})
        row.usage_estimated = True
        self.writer.in_flight(row)
        return estimate

    async def _prompt_estimate(self, state: _Request) -> int:
        self._closing(state)
        try:
            counted = await asyncio.shield(state.estimate) if state.estimate is not None else None
        except Exception:
            counted = None
        if counted is None:
            counted = await self.counter.prompt(state.route.upstream_model, state.request)
        return counted

    async def _estimated(self, state: _Request, completion_text: str, partial: Usage | None = None) -> Usage:
        partial = partial or Usage()
        prompt = partial.prompt_tokens or await self._prompt_estimate(state)
        counted = await self.counter.count_async(state.route.upstream_model, completion_text)
        usage = Usage(
            prompt_tokens=prompt,
            completion_tokens=max(partial.completion_tokens, counted),
            cache_read_tokens=partial.cache_read_tokens,
            cache_write_tokens=partial.cache_write_tokens,
        )
        state.draft.usage = usage
        state.draft.usage_estimated = True
        return usage

    def _price(self, state: _Request, status: str, http_status: int, error_code: str | None = None) -> None:
        route = state.opened.route if state.opened is not None else state.route
        draft = state.draft
        if not state.priced:
            draft.cost_micros = route.price.cost_micros(draft.usage)
            self.keys.add_pending(state.grant.id, draft.cost_micros)
            state.priced = True
        draft.status = status
        draft.http_status = http_status
        draft.error_code = error_code if status != "succeeded" else None

    async def _fail_before_first_byte(self, state: _Request, error: LlmRequestError) -> None:
        draft = state.draft
        draft.status = "failed"
        draft.http_status = error.status
        draft.error_code = error.code
        await self._finalize(state)

    async def _finalize(self, state: _Request) -> None:
        """Write the terminal record once (group-committed; the sweeper is the net)."""
        draft = state.draft
        draft.ended_at = draft.ended_at or datetime.now(UTC)
        self._closing(state)
        if state.estimate is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(state.estimate)
        spend_after: int | None = None
        try:
            spend_after = await self.writer.finalize(draft)
        except Exception as exc:
            log.error("spend_finalize_failed", error=redact(str(exc))[:300])
        finally:
            self.keys.settle(state.grant, draft.cost_micros if state.priced else 0, spend_after)
            self._end()

    # --- lifecycle -------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _begin(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def _end(self) -> None:
        self.in_flight -= 1
        if self.in_flight <= 0:
            self.in_flight = 0
            self._idle.set()

    async def drain(self, timeout_s: float) -> None:
        """Refuse new requests (503) and wait for those in flight to finish and finalize."""
        self.draining = True
        log.info("llm_proxy_draining", in_flight=self.in_flight, timeout_s=timeout_s)
        deadline = time.monotonic() + timeout_s
        while self.in_flight > 0 and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout=max(deadline - time.monotonic(), 0.01))
        log.info("llm_proxy_drained", in_flight=self.in_flight)
