"""The auth service's error tree. Each leaf has a stable `code`; kit.errors.WIRE maps the kind
to gRPC and HTTP statuses, and the gateway maps the gRPC status back (gateway.md §4.6).

    DomainError (kit)
    ├── InvalidArgument ─────────── invalid_argument                           422
    ├── Unauthenticated ─────────── unauthenticated                            401
    │   └── InvalidCredentials ──── invalid_credentials (same for unknown email) 401
    ├── PermissionDenied ────────── forbidden                                  403
    │   ├── EmailNotVerified ────── email_not_verified                         403
    │   ├── SignupClosed ────────── signup_closed                              403
    │   └── InvitationEmailMismatch invitation_email_mismatch                  403
    ├── NotFound ────────────────── organization_not_found, member_not_found,  404
    │                               invitation_not_found, api_key_not_found, user_not_found
    ├── AlreadyExists ───────────── email_taken, slug_taken, invitation_exists, already_member 409
    ├── FailedPrecondition ──────── last_owner, personal_org, invitation_expired,             409
    │                               invitation_not_pending, link_used, link_expired,
    │                               not_a_member, api_key_limit, oauth_failed
    ├── ResourceExhausted ───────── too_many_requests (+ retry_after_s → Retry-After)       429
    └── Unavailable ─────────────── billing_unavailable                                      503

Tenancy: anything of an organization the caller is not a member of is `*_not_found`, never
`forbidden`, so ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass

from proliferate.kit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "AlreadyExists",
    "DomainError",
    "EmailNotVerified",
    "FailedPrecondition",
    "InvalidArgument",
    "InvalidCredentials",
    "InvitationEmailMismatch",
    "NotFound",
    "PermissionDenied",
    "Refused",
    "ResourceExhausted",
    "SignupClosed",
    "TooManyRequests",
    "Unauthenticated",
    "Unavailable",
]


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"
    message = "the email or the password is wrong"


class EmailNotVerified(PermissionDenied):
    # auth.md §7 names FAILED_PRECONDITION with HTTP 403; the gateway's one status table maps
    # FAILED_PRECONDITION to 409, so the 403 is carried by PERMISSION_DENIED.
    code = "email_not_verified"
    message = "verify your email address first: we sent you a link"


class SignupClosed(PermissionDenied):
    code = "signup_closed"
    message = "sign-up is by invitation only"


class InvitationEmailMismatch(PermissionDenied):
    code = "invitation_email_mismatch"
    message = "this invitation was sent to another email address"


class TooManyRequests(ResourceExhausted):
    code = "too_many_requests"
    message = "too many attempts; try again later"


def invalid(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{field}: {message}", fields=[{"field": field, "message": message}])


def not_found(what: str) -> NotFound:
    return NotFound(f"{what.replace('_', ' ')} not found", code=f"{what}_not_found")


def conflict(code: str, message: str, **details: object) -> FailedPrecondition:
    return FailedPrecondition(message, code=code, **details)


def exists(code: str, message: str) -> AlreadyExists:
    return AlreadyExists(message, code=code)


def forbidden(message: str = "your role does not allow this") -> PermissionDenied:
    return PermissionDenied(message)


@dataclass(frozen=True)
class Refused:
    """An expected refusal whose side effects must still commit (a failed sign-in counts
    against the rate limit; an expired invitation becomes `expired`). The service returns it,
    the adapter raises `error` after the unit of work committed."""

    error: DomainError
