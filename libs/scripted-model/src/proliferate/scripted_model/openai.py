"""The OpenAI Chat Completions wire format, as the scripted model speaks it."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from proliferate.scripted_model.script import ScriptedRequest, Turn, estimate_tokens

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout",
    429: "rate_limit_exceeded",
    529: "overloaded",
}


def error_body(status: int, error_type: str | None, message: str) -> dict[str, Any]:
    kind = error_type or _ERROR_TYPES.get(
        status, "server_error" if status >= 500 else "invalid_request_error"
    )
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


def validate(body: dict[str, Any]) -> str | None:
    """Why the body is not a Chat Completions request (the vendor answers 400), or None."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    return None


def usage_of(turn: Turn, request: ScriptedRequest, text: str) -> dict[str, Any]:
    prompt = turn.usage.input_tokens
    if prompt is None:
        prompt = request.estimated_input_tokens
    completion = turn.usage.output_tokens
    if completion is None:
        completion = estimate_tokens(text + "".join(json.dumps(c.arguments) for c in turn.tool_calls))
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if turn.usage.cache_read_tokens or turn.usage.cache_write_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": turn.usage.cache_read_tokens}
        # litellm and Anthropic-compatible gateways read this name for cache writes.
        usage["cache_creation_input_tokens"] = turn.usage.cache_write_tokens
    return usage


def _tool_calls(turn: Turn) -> list[dict[str, Any]]:
    return [
        {
            "id": call.id or f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
        }
        for call in turn.tool_calls
    ]


def completion(turn: Turn, request: ScriptedRequest) -> dict[str, Any]:
    text = turn.render_text(request)
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    calls = _tool_calls(turn)
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": usage_of(turn, request, text),
    }


def frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


def stream_frames(turn: Turn, request: ScriptedRequest) -> list[bytes]:
    """Every SSE frame of the answer, in order, ending with `data: [DONE]`."""
    text = turn.render_text(request)
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return frame({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    frames = [chunk({"role": "assistant", "content": ""})]
    for start in range(0, len(text), turn.chunk_chars):
        frames.append(chunk({"content": text[start : start + turn.chunk_chars]}))
    for index, call in enumerate(_tool_calls(turn)):
        head = {"index": index, "id": call["id"], "type": "function"}
        frames.append(
            chunk({"tool_calls": [{**head, "function": {"name": call["function"]["name"], "arguments": ""}}]})
        )
        arguments: str = call["function"]["arguments"]
        for start in range(0, len(arguments), turn.chunk_chars):
            piece = arguments[start : start + turn.chunk_chars]
            frames.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    frames.append(chunk({}, "tool_calls" if turn.tool_calls else "stop"))
    if request.include_usage:
        frames.append(frame({**base, "choices": [], "usage": usage_of(turn, request, text)}))
    frames.append(DONE)
    return frames


def stream_error_frame(error_type: str, message: str) -> bytes:
    return frame({"error": {"message": message, "type": error_type, "code": error_type}})
