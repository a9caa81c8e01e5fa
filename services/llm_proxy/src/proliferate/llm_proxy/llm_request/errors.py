"""Errors of the LLM endpoint, answered in the caller's dialect (llm-proxy.md §7).

    LlmRequestError                  (status, code; never a stack trace, never a key)
    ├── InvalidRequest        400 invalid_request     not JSON, wrong types, empty messages, n > 1, …
    ├── InvalidApiKey         401 invalid_api_key     missing, unknown, revoked or expired: one body
    ├── OrgPaused             402 org_paused
    ├── BudgetExceeded        402 budget_exceeded
    ├── ModelNotAllowed       403 model_not_allowed
    ├── ModelNotFound         404 model_not_found
    ├── RequestTooLarge       413 request_too_large
    ├── RateLimited           429 rate_limited        (retry-after when the vendor gave one)
    ├── UpstreamError         502 upstream_error      vendor 5xx / network after retries
    ├── ModelUnavailable      503 model_unavailable   the route's vendor key is not configured
    ├── ShuttingDown          503 shutting_down       draining after SIGTERM
    └── UpstreamTimeout       504 upstream_timeout

OpenAI routes answer `{"error": {"type", "code", "message"}}`; Anthropic routes answer
`{"type": "error", "error": {"type", "message"}}` with the code as `type`. This edge does not
use the kit's JSON envelope: its callers are LLM SDKs, which read these shapes.
"""

from __future__ import annotations

import json
import re

from proliferate.kit.logs import redact
from proliferate.llm_proxy.model_route.catalog import Dialect

_KEYISH = re.compile(r"(sk-[A-Za-z0-9_-]{6,}|[A-Za-z0-9_-]{32,})")


def scrub(text: str) -> str:
    """Text from outside (a vendor's error, a client's model name), safe to log or show:
    at most 500 characters, nothing shaped like a key."""
    return _KEYISH.sub("[REDACTED]", redact(text))[:500]


_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class LlmRequestError(Exception):
    status = 500
    code = "internal_error"
    message = "internal error"

    def __init__(self, message: str | None = None, *, retry_after: str | None = None) -> None:
        self.message = message or type(self).message
        self.retry_after = retry_after
        super().__init__(self.message)

    def body(self, dialect: Dialect) -> bytes:
        if dialect is Dialect.ANTHROPIC:
            payload: dict[str, object] = {
                "type": "error",
                "error": {"type": self.code, "message": self.message},
            }
        else:
            kind = _OPENAI_TYPES.get(self.status, "api_error")
            payload = {"error": {"type": kind, "code": self.code, "message": self.message}}
        return json.dumps(payload).encode()

    def stream_event(self, dialect: Dialect) -> bytes:
        """The error as an SSE event, for a failure after the first byte."""
        if dialect is Dialect.ANTHROPIC:
            return b"event: error\ndata: " + self.body(dialect) + b"\n\n"
        return b"data: " + self.body(dialect) + b"\n\n"


class InvalidRequest(LlmRequestError):
    status = 400
    code = "invalid_request"
    message = "the request body is not a valid request"


class InvalidApiKey(LlmRequestError):
    status = 401
    code = "invalid_api_key"
    message = "invalid API key"


class OrgPaused(LlmRequestError):
    status = 402
    code = "org_paused"
    message = "LLM access is paused for this organization"


class BudgetExceeded(LlmRequestError):
    status = 402
    code = "budget_exceeded"
    message = "this key has reached its budget"


class ModelNotAllowed(LlmRequestError):
    status = 403
    code = "model_not_allowed"
    message = "this key may not use this model"


class ModelNotFound(LlmRequestError):
    status = 404
    code = "model_not_found"
    message = "no such model"


class RequestTooLarge(LlmRequestError):
    status = 413
    code = "request_too_large"
    message = "the request body is too large"


class RateLimited(LlmRequestError):
    status = 429
    code = "rate_limited"
    message = "the model vendor is rate limiting; retry later"


class UpstreamError(LlmRequestError):
    status = 502
    code = "upstream_error"
    message = "the model vendor failed"


class ModelUnavailable(LlmRequestError):
    status = 503
    code = "model_unavailable"
    message = "this model is not configured on this installation"


class ShuttingDown(LlmRequestError):
    status = 503
    code = "shutting_down"
    message = "this replica is shutting down; retry"


class UpstreamTimeout(LlmRequestError):
    status = 504
    code = "upstream_timeout"
    message = "the model vendor did not answer in time"
