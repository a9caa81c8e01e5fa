"""The only place virtual key rows become messages, and messages become requests."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp
from proliferate.llm_proxy.models import VirtualKey
from proliferate.llm_proxy.virtual_key.errors import InvalidKeyRequest
from proliferate.llm_proxy.virtual_key.service import IssuedKey, KeyRequest, RevokeTarget
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2 as pb

SCOPES = {pb.KEY_SCOPE_SESSION: "session", pb.KEY_SCOPE_SERVICE: "service"}
SCOPE_ENUM = {v: k for k, v in SCOPES.items()}
BUDGET_SOURCES = {
    pb.BUDGET_SOURCE_UNSPECIFIED: "caller",
    pb.BUDGET_SOURCE_CALLER: "caller",
    pb.BUDGET_SOURCE_BILLING: "billing",
}
BUDGET_ENUM = {"caller": pb.BUDGET_SOURCE_CALLER, "billing": pb.BUDGET_SOURCE_BILLING}
REVOKE_REASONS = {
    pb.REVOKE_REASON_UNSPECIFIED: "explicit",
    pb.REVOKE_REASON_EXPLICIT: "explicit",
    pb.REVOKE_REASON_SESSION_PAUSED: "session_paused",
    pb.REVOKE_REASON_SESSION_COMPLETED: "session_completed",
    pb.REVOKE_REASON_SESSION_FAILED: "session_failed",
    pb.REVOKE_REASON_RUN_FINISHED: "run_finished",
    pb.REVOKE_REASON_ORG_DELETED: "org_deleted",
}


def parse_uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        raise InvalidKeyRequest(f"{field} must be a UUID", field=field) from None


def optional_uuid(value: str, field: str) -> uuid.UUID | None:
    return parse_uuid(value, field) if value else None


def key_request(request: pb.IssueVirtualKeyRequest, caller: str) -> KeyRequest:
    if request.scope not in SCOPES:
        raise InvalidKeyRequest("scope must be SESSION or SERVICE", field="scope")
    if request.budget_source not in BUDGET_SOURCES:
        raise InvalidKeyRequest("unknown budget_source", field="budget_source")
    return KeyRequest(
        organization_id=parse_uuid(request.organization_id, "organization_id"),
        scope=SCOPES[request.scope],
        issued_by=caller,
        session_id=optional_uuid(request.session_id, "session_id")
        if request.HasField("session_id")
        else None,
        run_id=optional_uuid(request.run_id, "run_id") if request.HasField("run_id") else None,
        purpose=request.purpose if request.HasField("purpose") else None,
        ttl=timedelta(seconds=request.ttl_seconds) if request.HasField("ttl_seconds") else None,
        max_budget_micros=request.max_budget_micros if request.HasField("max_budget_micros") else None,
        budget_source=BUDGET_SOURCES[request.budget_source],
        allowed_models=tuple(request.allowed_models),
    )


def revoke_target(request: pb.RevokeVirtualKeysRequest) -> RevokeTarget:
    which = request.WhichOneof("target")
    if which is None:
        raise InvalidKeyRequest("one of session_id, run_id or virtual_key_id is required", field="target")
    value = parse_uuid(getattr(request, which), which)
    return RevokeTarget(**{which: value})


def revoke_reason(request: pb.RevokeVirtualKeysRequest) -> str:
    if request.reason not in REVOKE_REASONS:
        raise InvalidKeyRequest("unknown reason", field="reason")
    return REVOKE_REASONS[request.reason]


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def issued_virtual_key(issued: IssuedKey, base_url: str) -> pb.IssuedVirtualKey:
    return pb.IssuedVirtualKey(
        virtual_key_id=str(issued.key.id),
        key=issued.secret,
        key_prefix=issued.key.key_prefix,
        expires_at=timestamp(issued.key.expires_at),
        openai_base_url=base_url,
        anthropic_base_url=base_url,
    )


def virtual_key_info(key: VirtualKey) -> pb.VirtualKeyInfo:
    info = pb.VirtualKeyInfo(
        virtual_key_id=str(key.id),
        organization_id=str(key.organization_id),
        scope=SCOPE_ENUM[key.scope],
        key_prefix=key.key_prefix,
        status=key.status,
        budget_source=BUDGET_ENUM[key.budget_source],
        spend_micros=key.spend_micros,
        request_count=key.request_count,
        allowed_models=list(key.allowed_models or []),
        expires_at=timestamp(key.expires_at),
        issued_by=key.issued_by,
        revoked_at=timestamp(key.revoked_at),
        revoke_reason=key.revoke_reason or "",
        last_used_at=timestamp(key.last_used_at),
        created_at=timestamp(key.created_at),
    )
    if key.session_id is not None:
        info.session_id = str(key.session_id)
    if key.run_id is not None:
        info.run_id = str(key.run_id)
    if key.purpose is not None:
        info.purpose = key.purpose
    if key.max_budget_micros is not None:
        info.max_budget_micros = key.max_budget_micros
    return info


def normalized_base_url(public_url: str) -> str:
    """Trailing `/` trimmed, exactly one `/v1`."""
    base = public_url.rstrip("/")
    while base.endswith("/v1"):
        base = base[: -len("/v1")].rstrip("/")
    return f"{base}/v1"
