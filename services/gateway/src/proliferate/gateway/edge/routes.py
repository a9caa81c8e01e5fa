"""How every route of the edge is declared: its typed error responses in the OpenAPI document,
and its *tenancy* — what a user of another organization must get — which the tenancy test
reads from every registered route (a route without one fails the suite)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from litestar.openapi.datastructures import ResponseSpec
from proliferate.kit.http import ErrorEnvelope


class Tenancy(StrEnum):
    PUBLIC = "public"  # no caller, or a link token: nothing of an organization to probe
    USER = "user"  # the caller's own user, or organizations it is a member of
    ACTING_ORG = "acting_org"  # the caller's acting organization (active org, X-Org-Id, key's org)
    ORG_PATH = "org_path"  # an organization named in the path
    ORG_BODY = "org_body"  # an organization named in the body
    ORG_RESOURCE = "org_resource"  # a resource of the acting organization named in the path
    PLATFORM = "platform"  # super-admin routes: every organization by design


ORG_SCOPED = frozenset({Tenancy.ACTING_ORG, Tenancy.ORG_PATH, Tenancy.ORG_BODY, Tenancy.ORG_RESOURCE})

_ERRORS = {
    400: "malformed JSON (`invalid_json`)",
    401: "no, invalid or expired credential (`unauthenticated`, `invalid_credentials`)",
    403: "not allowed (`forbidden`, `origin_not_allowed`, `email_not_verified`, …)",
    404: "not found, or not visible to the caller (`*_not_found`)",
    409: "conflict with the current state (`email_taken`, `last_owner`, `invitation_expired`, …)",
    413: "body over the size limit (`payload_too_large`)",
    422: "a field is invalid (`validation_failed` / `invalid_argument`, fields named in details)",
    429: "rate limited (`too_many_requests`, with Retry-After)",
    503: "a dependency is unavailable (`auth_unavailable`, `billing_unavailable`)",
    504: "a dependency did not answer in time (`dependency_timeout`)",
}
ERROR_RESPONSES = {
    status: ResponseSpec(data_container=ErrorEnvelope, description=text) for status, text in _ERRORS.items()
}


def documented(tenancy: Tenancy, **extra: Any) -> dict[str, Any]:
    """Keyword arguments of a route decorator: error responses, tenancy, anything else."""
    responses = {**ERROR_RESPONSES, **extra.pop("responses", {})}
    return {"responses": responses, "opt": {"tenancy": tenancy}, **extra}
