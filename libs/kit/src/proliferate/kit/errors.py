"""The root of every service's error tree, and the one table that maps it to the wire.

    DomainError                       (code, message, details; never a 500)
    ├── InvalidArgument               422 / INVALID_ARGUMENT
    ├── Unauthenticated               401 / UNAUTHENTICATED
    ├── PermissionDenied              403 / PERMISSION_DENIED
    ├── NotFound                      404 / NOT_FOUND
    ├── AlreadyExists                 409 / ALREADY_EXISTS
    ├── FailedPrecondition            409 / FAILED_PRECONDITION
    ├── Aborted                       409 / ABORTED
    ├── ResourceExhausted             429 / RESOURCE_EXHAUSTED
    ├── Unavailable                   503 / UNAVAILABLE
    └── DeadlineExceeded              504 / DEADLINE_EXCEEDED

Each service subclasses these in its own `errors.py` with a stable `code`. A remote error
(gRPC status from another service) comes back as `RemoteError` carrying the same kind and
code, so an edge maps it with the same table.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import grpc


class ErrorKind(StrEnum):
    INVALID_ARGUMENT = "invalid_argument"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    FAILED_PRECONDITION = "failed_precondition"
    ABORTED = "aborted"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    INTERNAL = "internal"


# kind -> (gRPC status, HTTP status). The only place this mapping exists.
WIRE: dict[ErrorKind, tuple[grpc.StatusCode, int]] = {
    ErrorKind.INVALID_ARGUMENT: (grpc.StatusCode.INVALID_ARGUMENT, 422),
    ErrorKind.UNAUTHENTICATED: (grpc.StatusCode.UNAUTHENTICATED, 401),
    ErrorKind.PERMISSION_DENIED: (grpc.StatusCode.PERMISSION_DENIED, 403),
    ErrorKind.NOT_FOUND: (grpc.StatusCode.NOT_FOUND, 404),
    ErrorKind.ALREADY_EXISTS: (grpc.StatusCode.ALREADY_EXISTS, 409),
    ErrorKind.FAILED_PRECONDITION: (grpc.StatusCode.FAILED_PRECONDITION, 409),
    ErrorKind.ABORTED: (grpc.StatusCode.ABORTED, 409),
    ErrorKind.RESOURCE_EXHAUSTED: (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    ErrorKind.UNAVAILABLE: (grpc.StatusCode.UNAVAILABLE, 503),
    ErrorKind.DEADLINE_EXCEEDED: (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    ErrorKind.INTERNAL: (grpc.StatusCode.INTERNAL, 500),
}

_KIND_BY_GRPC: dict[grpc.StatusCode, ErrorKind] = {status: kind for kind, (status, _) in WIRE.items()}
_KIND_BY_GRPC[grpc.StatusCode.UNKNOWN] = ErrorKind.INTERNAL
_KIND_BY_GRPC[grpc.StatusCode.CANCELLED] = ErrorKind.UNAVAILABLE
_KIND_BY_GRPC[grpc.StatusCode.UNIMPLEMENTED] = ErrorKind.INTERNAL
_KIND_BY_GRPC[grpc.StatusCode.OUT_OF_RANGE] = ErrorKind.INVALID_ARGUMENT
_KIND_BY_GRPC[grpc.StatusCode.DATA_LOSS] = ErrorKind.INTERNAL


def grpc_status(kind: ErrorKind) -> grpc.StatusCode:
    return WIRE[kind][0]


def http_status(kind: ErrorKind) -> int:
    return WIRE[kind][1]


def kind_from_grpc(status: grpc.StatusCode) -> ErrorKind:
    return _KIND_BY_GRPC.get(status, ErrorKind.INTERNAL)


class DomainError(Exception):
    """An expected outcome that a caller must see as a typed error, never as a 500."""

    kind: ErrorKind = ErrorKind.INTERNAL
    code: str = "internal_error"
    message: str = "internal error"

    def __init__(self, message: str | None = None, *, code: str | None = None, **details: Any) -> None:
        self.message = message or type(self).message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidArgument(DomainError):
    kind = ErrorKind.INVALID_ARGUMENT
    code = "invalid_argument"
    message = "invalid argument"


class Unauthenticated(DomainError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "unauthenticated"
    message = "authentication required"


class PermissionDenied(DomainError):
    kind = ErrorKind.PERMISSION_DENIED
    code = "forbidden"
    message = "not allowed"


class NotFound(DomainError):
    kind = ErrorKind.NOT_FOUND
    code = "not_found"
    message = "not found"


class AlreadyExists(DomainError):
    kind = ErrorKind.ALREADY_EXISTS
    code = "already_exists"
    message = "already exists"


class FailedPrecondition(DomainError):
    kind = ErrorKind.FAILED_PRECONDITION
    code = "failed_precondition"
    message = "the resource is not in a state that allows this"


class Aborted(DomainError):
    kind = ErrorKind.ABORTED
    code = "aborted"
    message = "aborted by a concurrent operation; retry"


class ResourceExhausted(DomainError):
    kind = ErrorKind.RESOURCE_EXHAUSTED
    code = "resource_exhausted"
    message = "limit reached"


class Unavailable(DomainError):
    kind = ErrorKind.UNAVAILABLE
    code = "unavailable"
    message = "a dependency is unavailable; retry later"


class DeadlineExceeded(DomainError):
    kind = ErrorKind.DEADLINE_EXCEEDED
    code = "dependency_timeout"
    message = "a dependency did not answer in time"


class RemoteError(DomainError):
    """An error answered by another service over gRPC, with its kind and stable code."""

    def __init__(
        self, kind: ErrorKind, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, code=code, **(details or {}))
        self.kind = kind
