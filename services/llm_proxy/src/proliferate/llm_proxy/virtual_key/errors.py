"""Errors of the virtual key domain (gRPC; `kit.errors.WIRE` maps them).

DomainError
├── InvalidArgument   invalid_argument     bad ttl, scope/session mismatch, unknown model, bad id
├── PermissionDenied  forbidden            (the caller allow-list, raised by kit.rpc)
└── NotFound          virtual_key_not_found, session_not_found, run_not_found
"""

from __future__ import annotations

from proliferate.kit.errors import InvalidArgument, NotFound


class InvalidKeyRequest(InvalidArgument):
    code = "invalid_argument"


class VirtualKeyNotFound(NotFound):
    code = "virtual_key_not_found"
    message = "no such virtual key in this organization"
