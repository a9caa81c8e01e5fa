"""What a scripted model answers: turns, the conditions that pick them, and the failures they inject.

A `Script` is an ordered list of `Turn`s. Each request takes the **first** turn whose `when`
matches it (a turn without `when` matches anything); a turn is used `times` times (1 by
default, `None` = forever) and then leaves the script. A request no turn matches gets the
script's `fallback` (a short text by default) and is recorded as `unmatched`.

The same structs are the JSON body of `PUT /_scripted/script`, so a test in another process
scripts the server exactly as an in-process test does.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import msgspec

Api = Literal["openai", "anthropic"]


class ToolCall(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A tool call the model makes: OpenAI `tool_calls[]` / Anthropic `tool_use` block."""

    name: str
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)
    id: str | None = None  # generated (`call_…` / `toolu_…`) when absent


class Usage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Token counts reported to the client; `None` = estimated (≈ 4 characters a token)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


class Match(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """Conditions on a request; every condition given must hold."""

    api: Api | None = None
    model: str | None = None
    stream: bool | None = None
    has_tools: bool | None = None
    # The last message carries a tool result (OpenAI `role: tool`, Anthropic `tool_result`).
    after_tool_result: bool | None = None
    last_user_contains: str | None = None
    system_contains: str | None = None
    any_text_contains: str | None = None

    def matches(self, request: ScriptedRequest) -> bool:
        checks: list[bool] = []
        if self.api is not None:
            checks.append(request.api == self.api)
        if self.model is not None:
            checks.append(request.model == self.model)
        if self.stream is not None:
            checks.append(request.stream == self.stream)
        if self.has_tools is not None:
            checks.append(request.has_tools == self.has_tools)
        if self.after_tool_result is not None:
            checks.append((request.last_tool_result is not None) == self.after_tool_result)
        if self.last_user_contains is not None:
            checks.append(self.last_user_contains in request.last_user_text)
        if self.system_contains is not None:
            checks.append(self.system_contains in request.system_text)
        if self.any_text_contains is not None:
            checks.append(self.any_text_contains in request.all_text)
        return all(checks)


class Turn(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """One scripted answer: text and/or tool calls, or an error, with optional delays and breaks.

    `text` may contain `{last_user}` and `{last_tool_result}`, replaced by the request's last
    user text and last tool result (so a turn can echo a command's output back).
    """

    text: str = ""
    tool_calls: list[ToolCall] = msgspec.field(default_factory=list)
    usage: Usage = msgspec.field(default_factory=Usage)
    when: Match | None = None
    times: int | None = 1
    # Streaming shape: text is sent `chunk_chars` characters per chunk.
    chunk_chars: int = 16
    # Failure before the first byte: an HTTP error in the request's dialect.
    status: int = 200
    error_type: str | None = None  # default from the status (e.g. `rate_limit_error`, `server_error`)
    error_message: str = "scripted error"
    retry_after: int | None = None
    # Timing: before the response starts, and between stream chunks.
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    # After this many stream events, wait until `release(gate)` (or `POST /_scripted/gates/<gate>`).
    pause_after_chunks: int | None = None
    gate: str = "default"
    # After this many stream events, fail: `error` sends a dialect error event, `close` drops the
    # connection without ending the stream.
    break_after_chunks: int | None = None
    break_mode: Literal["error", "close"] = "error"

    def __post_init__(self) -> None:
        if self.times is not None and self.times < 1:
            raise ValueError("times must be ≥ 1 or None")
        if self.chunk_chars < 1:
            raise ValueError("chunk_chars must be ≥ 1")

    @property
    def is_error(self) -> bool:
        return self.status >= 400

    def render_text(self, request: ScriptedRequest) -> str:
        return self.text.replace("{last_user}", request.last_user_text).replace(
            "{last_tool_result}", request.last_tool_result or ""
        )


class Script(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    turns: list[Turn] = msgspec.field(default_factory=list)
    fallback: Turn = msgspec.field(default_factory=lambda: Turn(text="Done.", times=None))
    # A built-in responder used when no turn matches (instead of `fallback`): "dev" or "echo".
    builtin: str | None = None


class ScriptedRequest(msgspec.Struct, kw_only=True):
    """A request as the script sees it (and as `requests` records it)."""

    id: int
    api: Api
    path: str
    model: str
    stream: bool
    body: dict[str, Any]
    headers: dict[str, str]
    has_tools: bool
    tool_names: list[str]
    system_text: str
    last_user_text: str
    last_tool_result: str | None
    all_text: str
    include_usage: bool = False
    # Filled in as the answer goes out.
    turn_index: int | None = None  # position of the turn in the script when it was picked
    unmatched: bool = False
    status: int = 0
    chunks_sent: int = 0
    completed: bool = False
    client_disconnected: bool = False

    @property
    def estimated_input_tokens(self) -> int:
        return estimate_tokens(json.dumps(self.body.get("messages", []), separators=(",", ":")))


def estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def parse_request(
    request_id: int, api: Api, path: str, body: dict[str, Any], headers: dict[str, str]
) -> ScriptedRequest:
    """Read what a script may match on from an OpenAI or Anthropic request body."""
    messages = body.get("messages") or []
    tools = body.get("tools") or []
    system_parts: list[str] = []
    if api == "anthropic":
        system_parts.append(_text_of(body.get("system")))
    last_user = ""
    last_tool_result: str | None = None
    all_parts: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        content = message.get("content")
        text = _text_of(content)
        all_parts.append(text)
        if role == "system":
            system_parts.append(text)
        if role == "tool":
            last_tool_result = text
        elif role == "user":
            results = _tool_results(content)
            if results:
                last_tool_result = results[-1]
                plain = _text_of(
                    [b for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]
                )
                if plain:
                    last_user = plain
            else:
                last_tool_result = None
                last_user = text
        else:
            last_tool_result = None if role == "assistant" else last_tool_result
    tool_names = [_tool_name(t) for t in tools if isinstance(t, dict)]
    stream_options = body.get("stream_options")
    return ScriptedRequest(
        id=request_id,
        api=api,
        path=path,
        model=str(body.get("model", "")),
        stream=bool(body.get("stream", False)),
        body=body,
        headers=headers,
        has_tools=bool(tools),
        tool_names=[n for n in tool_names if n],
        system_text="\n".join(p for p in system_parts if p),
        last_user_text=last_user,
        last_tool_result=last_tool_result,
        all_text="\n".join([*system_parts, *all_parts]),
        include_usage=isinstance(stream_options, dict) and bool(stream_options.get("include_usage")),
    )


def _tool_name(tool: dict[str, Any]) -> str:
    function = tool.get("function")
    if isinstance(function, dict):
        return str(function.get("name", ""))
    return str(tool.get("name", ""))


def _text_of(content: Any) -> str:
    """Plain text of an OpenAI/Anthropic content value (string or list of blocks)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict):
                if block.get("type") == "tool_result":
                    parts.append(_text_of(block.get("content")))
                elif isinstance(block.get("text"), str):
                    parts.append(block["text"])
        return "\n".join(parts)
    return ""


def _tool_results(content: Any) -> list[str]:
    if not isinstance(content, list):
        return []
    return [
        _text_of(block.get("content"))
        for block in content
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]


def agent_turns(*turns: Turn) -> list[Turn]:
    """These turns, each taken only by requests that offer tools.

    An agent also sends side requests without tools (OpenCode asks for a session title with
    its first prompt); those then fall through to the fallback instead of eating a turn.
    """
    return [
        turn if turn.when is not None else msgspec.structs.replace(turn, when=Match(has_tools=True))
        for turn in turns
    ]
