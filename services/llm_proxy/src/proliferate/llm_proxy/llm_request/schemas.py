"""The allow-listed request bodies of each dialect (a security control, llm-proxy.md §5.2 step 3).

Only these top-level fields are read; everything else is dropped, so litellm control
parameters (`api_key`, `api_base`, `base_url`, `custom_llm_provider`, `mock_response`,
`fallbacks`, `num_retries`, `timeout`, `extra_headers`) never leave the proxy. Message and
tool bodies stay `msgspec.Raw`: the pass-through path re-encodes them without parsing them.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Raw, UnsetType
from proliferate.llm_proxy.llm_request.errors import InvalidRequest
from proliferate.llm_proxy.model_route.catalog import Dialect

Positive = Annotated[int, Meta(gt=0)]
NonEmpty = Annotated[list[Raw], Meta(min_length=1)]


class StreamOptions(msgspec.Struct, omit_defaults=True):
    include_usage: bool | UnsetType = UNSET


class ChatCompletionRequest(msgspec.Struct, omit_defaults=True):
    """OpenAI `POST /v1/chat/completions`."""

    model: Annotated[str, Meta(min_length=1)]
    messages: NonEmpty
    tools: list[Raw] | UnsetType | None = UNSET
    tool_choice: Raw | UnsetType = UNSET
    parallel_tool_calls: bool | UnsetType | None = UNSET
    temperature: float | UnsetType | None = UNSET
    top_p: float | UnsetType | None = UNSET
    top_k: int | UnsetType | None = UNSET
    max_tokens: Positive | UnsetType | None = UNSET
    max_completion_tokens: Positive | UnsetType | None = UNSET
    stop: str | list[str] | UnsetType | None = UNSET
    stream: bool | UnsetType | None = UNSET
    stream_options: StreamOptions | UnsetType | None = UNSET
    response_format: Raw | UnsetType = UNSET
    reasoning_effort: str | UnsetType | None = UNSET
    n: Annotated[int, Meta(ge=1, le=1)] | UnsetType | None = UNSET
    seed: int | UnsetType | None = UNSET
    presence_penalty: float | UnsetType | None = UNSET
    frequency_penalty: float | UnsetType | None = UNSET

    @property
    def is_stream(self) -> bool:
        return self.stream is True

    @property
    def wants_usage(self) -> bool:
        return isinstance(self.stream_options, StreamOptions) and self.stream_options.include_usage is True


class AnthropicMetadata(msgspec.Struct, omit_defaults=True):
    user_id: str | UnsetType = UNSET


class MessagesRequest(msgspec.Struct, omit_defaults=True):
    """Anthropic `POST /v1/messages`."""

    model: Annotated[str, Meta(min_length=1)]
    messages: NonEmpty
    max_tokens: Positive
    system: Raw | UnsetType = UNSET
    tools: list[Raw] | UnsetType = UNSET
    tool_choice: Raw | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    top_k: int | UnsetType = UNSET
    stop_sequences: list[str] | UnsetType = UNSET
    stream: bool | UnsetType = UNSET
    thinking: Raw | UnsetType = UNSET
    metadata: AnthropicMetadata | UnsetType = UNSET

    @property
    def is_stream(self) -> bool:
        return self.stream is True

    @property
    def wants_usage(self) -> bool:
        return True  # Anthropic streams always carry usage (message_start, message_delta)


class CountTokensRequest(msgspec.Struct, omit_defaults=True):
    """Anthropic `POST /v1/messages/count_tokens`."""

    model: Annotated[str, Meta(min_length=1)]
    messages: NonEmpty
    system: Raw | UnsetType = UNSET
    tools: list[Raw] | UnsetType = UNSET


LlmRequest = ChatCompletionRequest | MessagesRequest

_DECODERS: dict[Dialect, msgspec.json.Decoder[Any]] = {
    Dialect.OPENAI: msgspec.json.Decoder(ChatCompletionRequest),
    Dialect.ANTHROPIC: msgspec.json.Decoder(MessagesRequest),
}
_COUNT_DECODER = msgspec.json.Decoder(CountTokensRequest)
_ENCODER = msgspec.json.Encoder()


def decode(dialect: Dialect, body: bytes) -> LlmRequest:
    request: LlmRequest = _decode(_DECODERS[dialect], body)
    return request


def decode_count(body: bytes) -> CountTokensRequest:
    request: CountTokensRequest = _decode(_COUNT_DECODER, body)
    return request


def _decode(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid request: {exc}") from None
    except msgspec.DecodeError:
        raise InvalidRequest("the request body is not valid JSON") from None


def upstream_body(request: LlmRequest, model_id: str) -> bytes:
    """The allow-listed body for the vendor, naming the deployment's model (usage always asked)."""
    if isinstance(request, ChatCompletionRequest) and request.is_stream:
        return _ENCODER.encode(
            msgspec.structs.replace(request, model=model_id, stream_options=StreamOptions(include_usage=True))
        )
    return _ENCODER.encode(msgspec.structs.replace(request, model=model_id))


def as_builtins(request: msgspec.Struct) -> dict[str, Any]:
    """The allow-listed fields as plain values (for litellm, and for counting tokens)."""
    decoded: dict[str, Any] = msgspec.json.decode(_ENCODER.encode(request))
    return decoded
