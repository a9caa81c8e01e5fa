"""The only place rows and domain results become protobuf messages (STYLE rule 6)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from proliferate.auth.admin.service import AdminView
from proliferate.auth.invitation.service import Preview
from proliferate.auth.models import ApiKey, Invitation, Member, Organization, User
from proliferate.auth.onboarding.service import OnboardingView
from proliferate.auth.token.service import SignedToken
from proliferate.auth.validation import mask_email
from proliferate.kit.principal import Principal, PrincipalKind
from proliferate.protos.auth.v1 import auth_pb2 as pb

_KIND_TO_PB = {
    PrincipalKind.USER: pb.Principal.USER,
    PrincipalKind.API_KEY: pb.Principal.API_KEY,
    PrincipalKind.SERVICE: pb.Principal.SERVICE,
    PrincipalKind.SANDBOX: pb.Principal.SANDBOX,
}


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def principal(p: Principal) -> pb.Principal:
    return pb.Principal(
        kind=_KIND_TO_PB[p.kind],
        user_id=p.user_id,
        organization_id=p.organization_id,
        role=p.role,
        credential_id=p.credential_id,
        impersonator_user_id=p.impersonator_user_id,
        email=p.email,
        is_super_admin=p.is_super_admin,
        service_name=p.service_name,
        session_id=p.session_id,
    )


def user(u: User) -> pb.User:
    return pb.User(
        id=str(u.id),
        email=u.email,
        name=u.name,
        image_url=u.image_url or "",
        email_verified=u.email_verified_at is not None,
        created_at=ts(u.created_at),
    )


def organization(o: Organization, role: str = "") -> pb.Organization:
    return pb.Organization(
        id=str(o.id),
        name=o.name,
        slug=o.slug,
        logo_url=o.logo_url or "",
        is_personal=o.is_personal,
        allowed_domains=list(o.allowed_domains),
        onboarding_status=o.onboarding_status,
        created_at=ts(o.created_at),
        role=role,
    )


def member(m: Member, u: User | None) -> pb.Member:
    return pb.Member(
        id=str(m.id),
        organization_id=str(m.organization_id),
        user_id=str(m.user_id),
        role=m.role,
        email=u.email if u else "",
        name=u.name if u else "",
        created_at=ts(m.created_at),
    )


def invitation(i: Invitation) -> pb.Invitation:
    return pb.Invitation(
        id=str(i.id),
        organization_id=str(i.organization_id),
        email=i.email,
        role=i.role,
        status=i.status,
        inviter_user_id=str(i.inviter_user_id or ""),
        expires_at=ts(i.expires_at),
        created_at=ts(i.created_at),
    )


def invitation_preview(p: Preview) -> pb.InvitationPreview:
    return pb.InvitationPreview(
        organization_name=p.organization_name,
        inviter_name=p.inviter_name,
        role=p.invitation.role,
        masked_email=mask_email(p.invitation.email),
        expires_at=ts(p.invitation.expires_at),
    )


def api_key(k: ApiKey) -> pb.ApiKey:
    return pb.ApiKey(
        id=str(k.id),
        organization_id=str(k.organization_id),
        user_id=str(k.user_id),
        name=k.name,
        start=k.start,
        expires_at=ts(k.expires_at),
        last_used_at=ts(k.last_used_at),
        revoked_at=ts(k.revoked_at),
        created_at=ts(k.created_at),
    )


def token(t: SignedToken) -> pb.Token:
    return pb.Token(token=t.token, expires_at=ts(t.expires_at), jti=t.jti)


def onboarding(view: OnboardingView) -> pb.OnboardingStatus:
    meta = view.organization.onboarding_meta
    answers = pb.OnboardingAnswers(selected_tools=[str(t) for t in meta.get("selected_tools", [])])
    for name in ("referral_source", "company_website", "team_size"):
        if isinstance(meta.get(name), str):
            setattr(answers, name, meta[name])
    status = pb.OnboardingStatus(
        organization_id=str(view.organization.id),
        status=view.organization.onboarding_status,
        onboarding_complete=view.onboarding_complete,
        answers=answers,
        degraded=view.degraded,
        repos=[pb.RepoSummary(id=i, name=n) for i, n in view.repos or []],
        repos_known=view.repos is not None,
    )
    if view.has_github_connection is not None:
        status.has_github_connection = view.has_github_connection
    if view.has_slack_connection is not None:
        status.has_slack_connection = view.has_slack_connection
    return status


def admin_status(view: AdminView) -> pb.AdminStatus:
    status = pb.AdminStatus(is_super_admin=view.is_super_admin)
    if view.impersonation is not None:
        status.impersonation.CopyFrom(
            pb.Impersonation(
                user_id=str(view.impersonation.user_id),
                organization_id=str(view.impersonation.organization_id),
                expires_at=ts(view.impersonation.expires_at),
            )
        )
    return status


def users(items: Iterable[User]) -> list[pb.User]:
    return [user(u) for u in items]
