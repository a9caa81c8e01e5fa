"""Errors of the spend domain (gRPC; `kit.errors.WIRE` maps them).

DomainError
├── InvalidArgument   invalid_argument     a malformed id or time range
└── NotFound          session_not_found, run_not_found   (no key of this org ever had it)
"""

from __future__ import annotations

from proliferate.kit.errors import NotFound


class SessionNotFound(NotFound):
    code = "session_not_found"
    message = "no such session in this organization"


class RunNotFound(NotFound):
    code = "run_not_found"
    message = "no such run in this organization"
