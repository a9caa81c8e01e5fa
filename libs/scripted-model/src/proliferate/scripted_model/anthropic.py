"""The Anthropic Messages wire format, as the scripted model speaks it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from proliferate.scripted_model.script import ScriptedRequest, Turn, estimate_tokens

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_body(status: int, error_type: str | None, message: str) -> dict[str, Any]:
    kind = error_type or _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def validate(body: dict[str, Any]) -> str | None:
    """Why the body is not a Messages request (the vendor answers 400), or None."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return "max_tokens: Field required (an integer ≥ 1)"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    return None


def _usage(turn: Turn, request: ScriptedRequest, text: str) -> tuple[int, int]:
    prompt = turn.usage.input_tokens
    if prompt is None:
        prompt = request.estimated_input_tokens
    output = turn.usage.output_tokens
    if output is None:
        output = estimate_tokens(text + "".join(json.dumps(c.arguments) for c in turn.tool_calls))
    return prompt, output


def _start_usage(turn: Turn, prompt: int, output: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "output_tokens": output,
        "cache_creation_input_tokens": turn.usage.cache_write_tokens,
        "cache_read_input_tokens": turn.usage.cache_read_tokens,
    }


def _content(turn: Turn, text: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for call in turn.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id or f"toolu_{uuid.uuid4().hex[:24]}",
                "name": call.name,
                "input": call.arguments,
            }
        )
    return blocks


def completion(turn: Turn, request: ScriptedRequest) -> dict[str, Any]:
    text = turn.render_text(request)
    prompt, output = _usage(turn, request, text)
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": _content(turn, text),
        "stop_reason": "tool_use" if turn.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": _start_usage(turn, prompt, output),
    }


def event(kind: str, payload: dict[str, Any]) -> bytes:
    data = json.dumps({"type": kind, **payload}, separators=(",", ":"))
    return f"event: {kind}\ndata: {data}\n\n".encode()


def stream_frames(turn: Turn, request: ScriptedRequest) -> list[bytes]:
    """Every SSE event of the answer, in order, ending with `message_stop`."""
    text = turn.render_text(request)
    prompt, output = _usage(turn, request, text)
    message: dict[str, Any] = {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _start_usage(turn, prompt, 1),
    }
    frames = [event("message_start", {"message": message}), event("ping", {})]
    for index, block in enumerate(_content(turn, text)):
        if block["type"] == "text":
            frames.append(
                event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
            )
            for start in range(0, len(text), turn.chunk_chars):
                delta = {"type": "text_delta", "text": text[start : start + turn.chunk_chars]}
                frames.append(event("content_block_delta", {"index": index, "delta": delta}))
        else:
            head = {**block, "input": {}}
            frames.append(event("content_block_start", {"index": index, "content_block": head}))
            arguments = json.dumps(block["input"])
            for start in range(0, len(arguments), turn.chunk_chars):
                delta = {
                    "type": "input_json_delta",
                    "partial_json": arguments[start : start + turn.chunk_chars],
                }
                frames.append(event("content_block_delta", {"index": index, "delta": delta}))
        frames.append(event("content_block_stop", {"index": index}))
    stop = {"stop_reason": "tool_use" if turn.tool_calls else "end_turn", "stop_sequence": None}
    frames.append(event("message_delta", {"delta": stop, "usage": {"output_tokens": output}}))
    frames.append(event("message_stop", {}))
    return frames


def stream_error_frame(error_type: str, message: str) -> bytes:
    return event("error", {"error": {"type": error_type, "message": message}})
