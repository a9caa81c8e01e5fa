"""auth's messages → the JSON of the auth route group (the only place they are converted)."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from proliferate.gateway.edge.auth import schemas as s
from proliferate.protos.auth.v1 import auth_pb2 as pb


def when(message: Message, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def opt(value: str) -> str | None:
    return value or None


def sign_in(result: pb.SignInResult) -> s.SignInOut:
    p = result.principal
    return s.SignInOut(
        user_id=p.user_id,
        organization_id=opt(p.organization_id),
        role=opt(p.role),
        expires_at=when(result, "expires_at"),
    )


def user(u: pb.User) -> s.UserOut:
    return s.UserOut(
        id=u.id,
        email=u.email,
        name=u.name,
        image_url=opt(u.image_url),
        email_verified=u.email_verified,
        created_at=when(u, "created_at"),
    )


def organization(o: pb.Organization) -> s.OrganizationOut:
    return s.OrganizationOut(
        id=o.id,
        name=o.name,
        slug=o.slug,
        logo_url=opt(o.logo_url),
        is_personal=o.is_personal,
        allowed_domains=list(o.allowed_domains),
        onboarding_status=o.onboarding_status,
        created_at=when(o, "created_at"),
        role=opt(o.role),
    )


def me(m: pb.Me, credential_kind: str) -> s.MeOut:
    return s.MeOut(
        user=user(m.user),
        organization=organization(m.organization) if m.HasField("organization") else None,
        role=opt(m.role),
        is_super_admin=m.is_super_admin,
        impersonator_user_id=opt(m.impersonator_user_id),
        credential_kind=credential_kind,
    )


def member(m: pb.Member) -> s.MemberOut:
    return s.MemberOut(
        id=m.id,
        organization_id=m.organization_id,
        user_id=m.user_id,
        role=m.role,
        email=m.email,
        name=m.name,
        created_at=when(m, "created_at"),
    )


def invitation(i: pb.Invitation) -> s.InvitationOut:
    return s.InvitationOut(
        id=i.id,
        organization_id=i.organization_id,
        email=i.email,
        role=i.role,
        status=i.status,
        inviter_user_id=opt(i.inviter_user_id),
        expires_at=when(i, "expires_at"),
        created_at=when(i, "created_at"),
    )


def invitation_preview(p: pb.InvitationPreview) -> s.InvitationPreviewOut:
    return s.InvitationPreviewOut(
        organization_name=p.organization_name,
        inviter_name=p.inviter_name,
        role=p.role,
        masked_email=p.masked_email,
        expires_at=when(p, "expires_at"),
    )


def onboarding(o: pb.OnboardingStatus) -> s.OnboardingStatusOut:
    a = o.answers
    return s.OnboardingStatusOut(
        organization_id=o.organization_id,
        status=o.status,
        onboarding_complete=o.onboarding_complete,
        answers=s.OnboardingAnswersOut(
            selected_tools=list(a.selected_tools),
            referral_source=a.referral_source if a.HasField("referral_source") else None,
            company_website=a.company_website if a.HasField("company_website") else None,
            team_size=a.team_size if a.HasField("team_size") else None,
        ),
        degraded=o.degraded,
        has_github_connection=o.has_github_connection if o.HasField("has_github_connection") else None,
        has_slack_connection=o.has_slack_connection if o.HasField("has_slack_connection") else None,
        repos=[s.RepoOut(id=r.id, name=r.name) for r in o.repos] if o.repos_known else None,
    )


def api_key(k: pb.ApiKey) -> s.ApiKeyOut:
    return s.ApiKeyOut(
        id=k.id,
        organization_id=k.organization_id,
        user_id=k.user_id,
        name=k.name,
        start=k.start,
        expires_at=when(k, "expires_at"),
        last_used_at=when(k, "last_used_at"),
        revoked_at=when(k, "revoked_at"),
        created_at=when(k, "created_at"),
    )


def admin_status(a: pb.AdminStatus) -> s.AdminStatusOut:
    impersonation = None
    if a.HasField("impersonation"):
        imp = a.impersonation
        impersonation = s.ImpersonationOut(
            user_id=imp.user_id, organization_id=imp.organization_id, expires_at=when(imp, "expires_at")
        )
    return s.AdminStatusOut(is_super_admin=a.is_super_admin, impersonation=impersonation)
