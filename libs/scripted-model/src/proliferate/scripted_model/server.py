"""The scripted model server: OpenAI `/v1/chat/completions` and Anthropic `/v1/messages`.

In-process (`async with ScriptedModel(...) as model:`), in a thread of its own
(`with serve_in_thread(...) as model:`, for synchronous code), or as a process
(`python -m proliferate.scripted_model --port 18080`). The control routes under
`/_scripted/` let a test in another process do what in-process tests do with methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
from aiohttp import web
from proliferate.scripted_model import anthropic, openai
from proliferate.scripted_model.builtin import BUILTINS, Responder
from proliferate.scripted_model.script import Api, Script, ScriptedRequest, Turn, parse_request

_WIRES = {"openai": openai, "anthropic": anthropic}


class ScriptedModel:
    """One scripted model server. Methods are safe to call from any thread."""

    def __init__(
        self,
        script: Script | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        builtin: str | None = None,
    ) -> None:
        if builtin is not None and builtin not in BUILTINS:
            raise ValueError(f"unknown built-in script {builtin!r} (known: {', '.join(BUILTINS)})")
        self.host = host
        self.port = port
        # When set, requests must carry it (`Authorization: Bearer` or `x-api-key`), like a vendor.
        self.api_key = api_key
        self.requests: list[ScriptedRequest] = []
        self.responder: Responder | None = None
        self._script = script or Script(builtin=builtin)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._gates: dict[str, asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._active: set[asyncio.Task[Any]] = set()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> ScriptedModel:
        self._loop = asyncio.get_running_loop()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(
            [
                web.post("/v1/chat/completions", self._openai),
                web.post("/v1/messages", self._anthropic),
                web.get("/v1/models", self._models),
                web.get("/healthz", self._health),
                web.get("/_scripted/script", self._get_script),
                web.put("/_scripted/script", self._put_script),
                web.post("/_scripted/turns", self._post_turns),
                web.get("/_scripted/requests", self._get_requests),
                web.delete("/_scripted/requests", self._delete_requests),
                web.post("/_scripted/gates/{gate}", self._release_gate),
                web.post("/_scripted/reset", self._reset),
            ]
        )
        # handler_cancellation: a client that disconnects cancels its handler, which is how the
        # server learns (and records) that the caller closed the connection mid-stream.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])
        return self

    async def stop(self) -> None:
        for gate in self._gates.values():
            gate.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ScriptedModel:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """`http://host:port` — the Anthropic base URL (SDKs append `/v1/messages`)."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """`http://host:port/v1` — the OpenAI base URL (SDKs append `/chat/completions`)."""
        return f"{self.url}/v1"

    # --- scripting -------------------------------------------------------------------------

    def script(self, *turns: Turn, fallback: Turn | None = None, builtin: str | None = None) -> None:
        """Replace the script: these turns, in order (and optionally a fallback or a built-in)."""
        script = Script(turns=list(turns), builtin=builtin)
        if fallback is not None:
            script.fallback = fallback
        self.set_script(script)

    def set_script(self, script: Script) -> None:
        if script.builtin is not None and script.builtin not in BUILTINS:
            raise ValueError(f"unknown built-in script {script.builtin!r}")
        with self._lock:
            self._script = script

    def add(self, *turns: Turn) -> None:
        """Append turns to the current script."""
        with self._lock:
            self._script.turns.extend(turns)

    @property
    def remaining_turns(self) -> list[Turn]:
        with self._lock:
            return list(self._script.turns)

    def release(self, gate: str = "default") -> None:
        """Let streams paused at `gate` (`Turn.pause_after_chunks`) go on; later ones pass at once."""
        loop = self._loop
        if loop is None:
            self._gate(gate).set()
        else:
            loop.call_soon_threadsafe(self._gate(gate).set)

    def reset(self) -> None:
        """Forget the script (back to the built-in or fallback), the requests and the gates."""
        with self._lock:
            self._script = Script(builtin=self._script.builtin)
            self.requests.clear()
            self._gates.clear()

    async def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[ScriptedRequest]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.requests)} request(s) arrived, expected {count}")
            await asyncio.sleep(0.01)
        return list(self.requests)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("the scripted model did not reach the expected state")
            await asyncio.sleep(0.01)

    def _gate(self, name: str) -> asyncio.Event:
        if name not in self._gates:
            self._gates[name] = asyncio.Event()
        return self._gates[name]

    def _pick(self, request: ScriptedRequest) -> Turn:
        with self._lock:
            script = self._script
            for index, turn in enumerate(script.turns):
                if turn.when is None or turn.when.matches(request):
                    request.turn_index = index
                    if turn.times is not None:
                        if turn.times <= 1:
                            del script.turns[index]
                        else:
                            script.turns[index] = msgspec.structs.replace(turn, times=turn.times - 1)
                    return turn
            request.unmatched = True
            responder = self.responder or (BUILTINS[script.builtin] if script.builtin else None)
            return responder(request) if responder is not None else script.fallback

    # --- the model routes ------------------------------------------------------------------

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "openai")

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "anthropic")

    async def _serve(self, request: web.Request, api: Api) -> web.StreamResponse:
        wire = _WIRES[api]
        if self.api_key is not None and _credential(request) != self.api_key:
            return _json(401, wire.error_body(401, None, "invalid x-api-key"))
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _json(400, wire.error_body(400, None, "the body is not valid JSON"))
        if not isinstance(body, dict):
            return _json(400, wire.error_body(400, None, "the body must be a JSON object"))
        headers = {k.lower(): v for k, v in request.headers.items()}
        scripted = parse_request(next(self._ids), api, request.path, body, headers)
        self.requests.append(scripted)
        problem = wire.validate(body)
        if problem is not None:
            scripted.status = 400
            return _json(400, wire.error_body(400, None, problem))
        turn = self._pick(scripted)
        task = asyncio.current_task()
        if task is not None:
            self._active.add(task)
        try:
            return await self._answer(request, scripted, turn)
        except asyncio.CancelledError:
            scripted.client_disconnected = True
            raise
        finally:
            if task is not None:
                self._active.discard(task)

    async def _answer(
        self, request: web.Request, scripted: ScriptedRequest, turn: Turn
    ) -> web.StreamResponse:
        wire = _WIRES[scripted.api]
        if turn.delay_s:
            await asyncio.sleep(turn.delay_s)
        if turn.is_error:
            scripted.status = turn.status
            extra = {"retry-after": str(turn.retry_after)} if turn.retry_after is not None else {}
            scripted.completed = True
            return _json(
                turn.status, wire.error_body(turn.status, turn.error_type, turn.error_message), extra
            )
        scripted.status = 200
        if not scripted.stream:
            if turn.pause_after_chunks == 0:
                await self._gate(turn.gate).wait()
            scripted.completed = True
            return _json(200, wire.completion(turn, scripted))
        return await self._stream(request, scripted, turn)

    async def _stream(
        self, request: web.Request, scripted: ScriptedRequest, turn: Turn
    ) -> web.StreamResponse:
        wire = _WIRES[scripted.api]
        response = web.StreamResponse(
            status=200,
            headers={
                "content-type": "text/event-stream",
                "cache-control": "no-cache",
                "x-request-id": str(scripted.id),
            },
        )
        await response.prepare(request)
        for frame in wire.stream_frames(turn, scripted):
            if turn.pause_after_chunks is not None and scripted.chunks_sent == turn.pause_after_chunks:
                await self._gate(turn.gate).wait()
            if turn.break_after_chunks is not None and scripted.chunks_sent == turn.break_after_chunks:
                return await self._break(request, response, scripted, turn)
            if turn.chunk_delay_s and scripted.chunks_sent:
                await asyncio.sleep(turn.chunk_delay_s)
            await response.write(frame)
            scripted.chunks_sent += 1
        await response.write_eof()
        scripted.completed = True
        return response

    async def _break(
        self, request: web.Request, response: web.StreamResponse, scripted: ScriptedRequest, turn: Turn
    ) -> web.StreamResponse:
        if turn.break_mode == "error":
            kind = turn.error_type or ("api_error" if scripted.api == "anthropic" else "server_error")
            await response.write(_WIRES[scripted.api].stream_error_frame(kind, turn.error_message))
            await response.write_eof()
            return response
        # `close`: drop the connection with the chunked body unfinished, as a dying upstream does.
        if request.transport is not None:
            request.transport.abort()
        return response

    async def _models(self, request: web.Request) -> web.StreamResponse:
        return _json(
            200, {"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "scripted"}]}
        )

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return _json(200, {"status": "ok"})

    # --- the control routes ----------------------------------------------------------------

    async def _get_script(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            return _raw(200, msgspec.json.encode(self._script))

    async def _put_script(self, request: web.Request) -> web.StreamResponse:
        try:
            self.set_script(msgspec.json.decode(await request.read(), type=Script))
        except (msgspec.DecodeError, ValueError) as exc:
            return _json(400, {"error": str(exc)})
        return _json(200, {"status": "ok"})

    async def _post_turns(self, request: web.Request) -> web.StreamResponse:
        try:
            turns = msgspec.json.decode(await request.read(), type=list[Turn])
        except (msgspec.DecodeError, ValueError) as exc:
            return _json(400, {"error": str(exc)})
        self.add(*turns)
        return _json(200, {"status": "ok", "turns": len(self.remaining_turns)})

    async def _get_requests(self, request: web.Request) -> web.StreamResponse:
        return _raw(200, msgspec.json.encode(list(self.requests)))

    async def _delete_requests(self, request: web.Request) -> web.StreamResponse:
        self.requests.clear()
        return _json(200, {"status": "ok"})

    async def _release_gate(self, request: web.Request) -> web.StreamResponse:
        self.release(request.match_info["gate"])
        return _json(200, {"status": "ok"})

    async def _reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return _json(200, {"status": "ok"})


def _credential(request: web.Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return request.headers.get("x-api-key")


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return _raw(status, json.dumps(payload).encode(), headers)


def _raw(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


@contextlib.contextmanager
def serve_in_thread(
    script: Script | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    builtin: str | None = None,
) -> Iterator[ScriptedModel]:
    """A scripted model on an event loop of its own thread, for synchronous tests and tools."""
    model = ScriptedModel(script, host=host, port=port, api_key=api_key, builtin=builtin)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="scripted-model", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(model.start(), loop).result(timeout=30)
        yield model
    finally:
        asyncio.run_coroutine_threadsafe(model.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
