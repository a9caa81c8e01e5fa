from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def sse_data(raw: str) -> list[Any]:
    """The `data:` payloads of an SSE body, JSON-decoded (`[DONE]` kept as a string)."""
    out: list[Any] = []
    for frame in raw.split("\n\n"):
        for line in frame.splitlines():
            if line.startswith("data: "):
                value = line[6:]
                out.append(value if value == "[DONE]" else json.loads(value))
    return out


def sse_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """`(event, data)` pairs of an Anthropic SSE body."""
    out: list[tuple[str, dict[str, Any]]] = []
    for frame in raw.strip().split("\n\n"):
        lines = frame.splitlines()
        assert lines[0].startswith("event: "), frame
        assert lines[1].startswith("data: "), frame
        out.append((lines[0][7:], json.loads(lines[1][6:])))
    return out
