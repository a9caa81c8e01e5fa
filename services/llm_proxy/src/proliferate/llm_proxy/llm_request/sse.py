"""Reading usage from a response as it goes by, without holding the stream back.

A reader is fed the upstream's bytes and returns what to forward now: whole SSE events, as
received (a chunk made only of whole events that carry no usage is forwarded untouched).
Only the events that carry usage or an error are decoded; the rest are kept as bytes, decoded
only if the request ends early and its completion must be counted locally.
"""

from __future__ import annotations

import json
from typing import Any

from proliferate.llm_proxy.llm_request.errors import scrub
from proliferate.llm_proxy.model_route.catalog import Usage

SEPARATOR = b"\n\n"
OPENAI_DONE = b"data: [DONE]\n\n"
OPENAI_KEEPALIVE = b": ping\n\n"
ANTHROPIC_KEEPALIVE = b'event: ping\ndata: {"type": "ping"}\n\n'


def _data(event: bytes) -> Any:
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                return json.loads(line[5:])
            except ValueError:
                return None
    return None


def scrubbed_error(event: bytes, anthropic: bool) -> bytes:
    """A vendor's error event with its message scrubbed (the vendor may echo what it was sent)."""
    payload = _data(event)
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        error = {"type": "upstream_error"}
        payload = {"type": "error", "error": error} if anthropic else {"error": error}
    error["message"] = scrub(str(error.get("message", "the model vendor failed")))
    data = json.dumps(payload).encode()
    return b"event: error\ndata: " + data + b"\n\n" if anthropic else b"data: " + data + b"\n\n"


def openai_usage(usage: dict[str, Any]) -> Usage:
    """OpenAI usage → uncached prompt, completion, cache read, cache write."""
    details = usage.get("prompt_tokens_details") or {}
    cache_read = int(details.get("cached_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    prompt = int(usage.get("prompt_tokens") or 0)
    return Usage(
        prompt_tokens=max(prompt - cache_read - cache_write, 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def anthropic_usage(usage: dict[str, Any], base: Usage | None = None) -> Usage:
    base = base or Usage()

    def count(key: str, default: int) -> int:
        value = usage.get(key)
        return int(value) if isinstance(value, int) and value else default

    return Usage(
        prompt_tokens=count("input_tokens", base.prompt_tokens),
        completion_tokens=count("output_tokens", base.completion_tokens),
        cache_read_tokens=count("cache_read_input_tokens", base.cache_read_tokens),
        cache_write_tokens=count("cache_creation_input_tokens", base.cache_write_tokens),
    )


class StreamReader:
    keepalive = OPENAI_KEEPALIVE

    def __init__(self) -> None:
        self._buffer = b""
        self.events: list[bytes] = []
        self.usage: Usage | None = None
        self.usage_complete = False
        self.error = False
        self.done = False
        # What to send instead of the event `_event` just read (a scrubbed error).
        self.replacement: bytes | None = None

    def feed(self, data: bytes) -> bytes:
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        if not self._buffer and data.endswith(SEPARATOR) and self._plain(data):
            self.events.append(data)
            return data
        self._buffer += data
        out: list[bytes] = []
        while True:
            end = self._buffer.find(SEPARATOR)
            if end < 0:
                break
            event, self._buffer = self._buffer[: end + 2], self._buffer[end + 2 :]
            if self._event(event):
                out.append(self.replacement or event)
                self.replacement = None
        return b"".join(out)

    def _plain(self, data: bytes) -> bool:
        """True when `data` has nothing this reader must look at."""
        raise NotImplementedError

    def _event(self, event: bytes) -> bool:
        """Note what `event` says; False to keep it from the client."""
        raise NotImplementedError

    def completion_text(self) -> str:
        raise NotImplementedError


class OpenAIStreamReader(StreamReader):
    """`data: {chunk}` events, a usage-only chunk (asked upstream always), `data: [DONE]`."""

    def __init__(self, forward_usage: bool) -> None:
        super().__init__()
        self.forward_usage = forward_usage

    def _plain(self, data: bytes) -> bool:
        return (
            b'"usage":{' not in data
            and b'"usage": {' not in data
            and b'{"error"' not in data
            and b"[DONE]" not in data
        )

    def _event(self, event: bytes) -> bool:
        if event.startswith(OPENAI_DONE[:12]):
            self.done = True
            return True
        if event.startswith(b'data: {"error"') or event.startswith(b'data:{"error"'):
            self.error = True
            self.replacement = scrubbed_error(event, anthropic=False)
            return True
        self.events.append(event)
        if b'"usage"' not in event:
            return True
        payload = _data(event)
        if isinstance(payload, dict) and isinstance(payload.get("usage"), dict):
            self.usage = openai_usage(payload["usage"])
            self.usage_complete = True
            if payload.get("choices") == []:
                return self.forward_usage
        return True

    def completion_text(self) -> str:
        parts: list[str] = []
        for event in self.events:
            for frame in event.split(SEPARATOR):
                payload = _data(frame)
                if not isinstance(payload, dict):
                    continue
                for choice in payload.get("choices") or []:
                    delta = choice.get("delta") or {}
                    parts.append(delta.get("content") or "")
                    parts.append(delta.get("reasoning_content") or "")
                    for call in delta.get("tool_calls") or []:
                        function = call.get("function") or {}
                        parts.append(function.get("name") or "")
                        parts.append(function.get("arguments") or "")
        return "".join(parts)


class AnthropicStreamReader(StreamReader):
    """`event: <type>` events; usage in `message_start` (input) and `message_delta` (output)."""

    keepalive = ANTHROPIC_KEEPALIVE

    def _plain(self, data: bytes) -> bool:
        return (
            b"event: message_start" not in data
            and b"event: message_delta" not in data
            and b"event: message_stop" not in data
            and b"event: error" not in data
        )

    def _event(self, event: bytes) -> bool:
        if event.startswith(b"event: message_start"):
            payload = _data(event)
            message = payload.get("message") if isinstance(payload, dict) else None
            if isinstance(message, dict) and isinstance(message.get("usage"), dict):
                self.usage = anthropic_usage(message["usage"], self.usage)
        elif event.startswith(b"event: message_delta"):
            payload = _data(event)
            if isinstance(payload, dict) and isinstance(payload.get("usage"), dict):
                self.usage = anthropic_usage(payload["usage"], self.usage)
                self.usage_complete = True
        elif event.startswith(b"event: message_stop"):
            self.done = True
        elif event.startswith(b"event: error"):
            self.error = True
            self.replacement = scrubbed_error(event, anthropic=True)
            return True
        self.events.append(event)
        return True

    def completion_text(self) -> str:
        parts: list[str] = []
        for event in self.events:
            for frame in event.split(SEPARATOR):
                if not frame.startswith(b"event: content_block_"):
                    continue
                payload = _data(frame)
                if not isinstance(payload, dict):
                    continue
                delta = payload.get("delta") or {}
                block = payload.get("content_block") or {}
                for value in (
                    delta.get("text"),
                    delta.get("partial_json"),
                    delta.get("thinking"),
                    block.get("name"),
                ):
                    if isinstance(value, str):
                        parts.append(value)
        return "".join(parts)


def usage_of_body(body: bytes, anthropic: bool) -> Usage | None:
    """The usage of a whole (non-streaming) response body."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    usage = payload.get("usage") if isinstance(payload, dict) else None
    if not isinstance(usage, dict):
        return None
    return anthropic_usage(usage) if anthropic else openai_usage(usage)
