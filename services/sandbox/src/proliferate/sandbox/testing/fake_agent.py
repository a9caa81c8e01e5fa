"""A fake agent for tests (sandbox-provider.md §8.3): the OpenCode HTTP/SSE surface the platform
uses, scripted per test, without a model.

    python3 -m proliferate.sandbox.testing.fake_agent --port 4096 [--script path.json]

Select it with `SANDBOX_LOCAL_AGENT_COMMAND="python3 -m proliferate.sandbox.testing.fake_agent
--port {port}"`. The script (JSON, also from `FAKE_AGENT_SCRIPT`) is a list of turns; each user
message consumes the next turn:

    [{"reply": "text"},
     {"tool": "verify", "args": {"folder": "x"}, "reply": "done"},   # calls the gateway tool route
     {"bash": ["echo", "hi"], "reply": "ran"}]                        # runs a command in the sandbox

Tool calls follow the agent-contract callback (§4.2): `POST {PROLIFERATE_GATEWAY_URL}/v1/sessions/
{PROLIFERATE_SESSION_ID}/tools/{tool}` with the sandbox token. Every turn is published on
`GET /event` as OpenCode-shaped events (`message.updated`, `message.part.updated`, `session.idle`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web


class FakeAgent:
    def __init__(self, script: list[dict[str, Any]]) -> None:
        self.script = script
        self.turn = 0
        self.sessions: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.listeners: set[asyncio.Queue[dict[str, Any]]] = set()

    def publish(self, event_type: str, properties: dict[str, Any]) -> None:
        for queue in list(self.listeners):
            queue.put_nowait({"type": event_type, "properties": properties})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/session", self.list_sessions)
        app.router.add_post("/session", self.create_session)
        app.router.add_get("/session/{id}", self.get_session)
        app.router.add_get("/session/{id}/message", self.list_messages)
        app.router.add_post("/session/{id}/message", self.prompt)
        app.router.add_post("/session/{id}/abort", self.abort)
        app.router.add_get("/event", self.events)
        app.router.add_get("/doc", self.doc)
        return app

    async def doc(self, _: web.Request) -> web.Response:
        return web.json_response({"openapi": "3.1.0", "info": {"title": "fake agent"}})

    async def list_sessions(self, _: web.Request) -> web.Response:
        return web.json_response(list(self.sessions.values()))

    async def create_session(self, request: web.Request) -> web.Response:
        sid = f"ses_{uuid.uuid4().hex[:16]}"
        now = int(time.time() * 1000)
        session = {
            "id": sid,
            "title": "fake",
            "time": {"created": now, "updated": now},
            "directory": os.getcwd(),
        }
        self.sessions[sid] = session
        self.messages[sid] = []
        self.publish("session.updated", {"info": session})
        return web.json_response(session)

    async def get_session(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        return (
            web.json_response(session) if session else web.json_response({"error": "not found"}, status=404)
        )

    async def list_messages(self, request: web.Request) -> web.Response:
        return web.json_response(self.messages.get(request.match_info["id"], []))

    async def abort(self, request: web.Request) -> web.Response:
        return web.json_response(True)

    async def prompt(self, request: web.Request) -> web.Response:
        sid = request.match_info["id"]
        if sid not in self.sessions:
            return web.json_response({"error": "not found"}, status=404)
        body = await request.json()
        text = " ".join(p.get("text", "") for p in body.get("parts", []) if isinstance(p, dict))
        self.messages[sid].append(
            {
                "info": {"id": f"msg_{uuid.uuid4().hex[:12]}", "role": "user"},
                "parts": [{"type": "text", "text": text}],
            }
        )
        turn: dict[str, Any] = (
            self.script[self.turn] if self.turn < len(self.script) else {"reply": f"echo: {text}"}
        )
        self.turn += 1
        parts: list[dict[str, Any]] = []
        if "bash" in turn:
            parts.append(await self._bash(sid, list(turn["bash"])))
        if "tool" in turn:
            parts.append(await self._tool(sid, str(turn["tool"]), dict(turn.get("args", {}))))
        parts.append({"type": "text", "text": str(turn.get("reply", ""))})
        info = {
            "id": f"msg_{uuid.uuid4().hex[:12]}",
            "sessionID": sid,
            "role": "assistant",
            "time": {"created": int(time.time() * 1000)},
        }
        for part in parts:
            self.publish(
                "message.part.updated", {"part": {**part, "sessionID": sid, "messageID": info["id"]}}
            )
        self.publish("message.updated", {"info": info})
        self.publish("session.idle", {"sessionID": sid})
        message = {"info": info, "parts": parts}
        self.messages[sid].append(message)
        return web.json_response(message)

    async def _bash(self, sid: str, argv: list[str]) -> dict[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        return {
            "type": "tool",
            "tool": "bash",
            "state": {
                "status": "completed",
                "input": {"command": " ".join(argv)},
                "output": out.decode(errors="replace"),
            },
        }

    async def _tool(self, sid: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        base = os.environ.get("PROLIFERATE_GATEWAY_URL", "")
        token = os.environ.get("SANDBOX_MCP_AUTH_TOKEN", "")
        session = os.environ.get("PROLIFERATE_SESSION_ID", "")
        call_id = str(uuid.uuid4())
        url = f"{base}/v1/sessions/{session}/tools/{tool}"
        headers = {"Authorization": f"Bearer {token}", "X-Proliferate-Contract": "1"}
        output = ""
        for delay in (0.5, 1, 2, 4, 8, None):
            try:
                async with (
                    aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http,
                    http.post(url, json={"tool_call_id": call_id, "args": args}, headers=headers) as response,
                ):
                    if response.status in (502, 503, 504) and delay is not None:
                        await asyncio.sleep(delay)
                        continue
                    output = await response.text()
                    break
            except aiohttp.ClientError as exc:
                if delay is None:
                    output = f"ERROR[transport]: {type(exc).__name__}"
                    break
                await asyncio.sleep(delay)
        return {
            "type": "tool",
            "tool": tool,
            "callID": call_id,
            "state": {"status": "completed", "input": args, "output": output},
        }

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.listeners.add(queue)
        try:
            await response.write(
                f"data: {json.dumps({'type': 'server.connected', 'properties': {}})}\n\n".encode()
            )
            while True:
                event = await queue.get()
                await response.write(f"data: {json.dumps(event)}\n\n".encode())
        finally:
            self.listeners.discard(queue)
        return response


def _script(path: str | None) -> list[dict[str, Any]]:
    source = path or os.environ.get("FAKE_AGENT_SCRIPT", "")
    if not source:
        return []
    data = json.loads(Path(source).read_text()) if not source.lstrip().startswith("[") else json.loads(source)
    return list(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fake_agent")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--hostname", default="127.0.0.1")
    parser.add_argument("--script", default=None)
    args = parser.parse_args(argv)
    web.run_app(FakeAgent(_script(args.script)).app(), host=args.hostname, port=args.port, print=None)


if __name__ == "__main__":
    main()
