"""The JSON of the auth route group: request bodies validated at the edge (auth validates
again), responses built from auth's messages in `serial.py`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Email = Annotated[str, Meta(min_length=3, max_length=320)]
NewPassword = Annotated[str, Meta(min_length=8, max_length=256)]
Password = Annotated[str, Meta(min_length=1, max_length=256)]
Name = Annotated[str, Meta(min_length=1, max_length=100)]
Slug = Annotated[str, Meta(min_length=3, max_length=48, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")]
Id = Annotated[str, Meta(min_length=1, max_length=64)]
LinkToken = Annotated[str, Meta(min_length=1, max_length=512)]
Role = Literal["owner", "admin", "member"]
InvitableRole = Literal["admin", "member"]


class Struct(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Request bodies refuse unknown fields, so a typo is an error and not silently ignored."""


# --- requests ------------------------------------------------------------------------------


class SignUpBody(Struct):
    email: Email
    password: NewPassword
    name: Name


class SignInBody(Struct):
    email: Email
    password: Password


class TokenBody(Struct):
    token: LinkToken


class EmailBody(Struct):
    email: Email


class ResetPasswordBody(Struct):
    token: LinkToken
    password: NewPassword


class ActiveOrganizationBody(Struct):
    organization_id: Id


class OrganizationCreateBody(Struct):
    name: Name
    slug: Slug | None = None


class OrganizationUpdateBody(Struct):
    name: Name | None = None
    slug: Slug | None = None
    logo_url: Annotated[str, Meta(max_length=2048)] | None = None


class AllowedDomainsBody(Struct):
    domains: Annotated[list[Annotated[str, Meta(min_length=1, max_length=253)]], Meta(max_length=20)]


class MemberRoleBody(Struct):
    role: Role


class InvitationCreateBody(Struct):
    email: Email
    role: InvitableRole = "member"
    resend: bool = False


class OnboardingAnswersBody(Struct):
    selected_tools: Annotated[list[Annotated[str, Meta(max_length=64)]], Meta(max_length=20)] | None = None
    referral_source: Annotated[str, Meta(max_length=200)] | None = None
    company_website: Annotated[str, Meta(max_length=2048)] | None = None
    team_size: Annotated[str, Meta(max_length=32)] | None = None


class StartTrialBody(Struct):
    plan: Literal["dev", "pro"]


class ApiKeyCreateBody(Struct):
    name: Annotated[str, Meta(min_length=1, max_length=64)]
    expires_in_days: Annotated[int, Meta(ge=1, le=365)] | None = None


class ImpersonationBody(Struct):
    user_id: Id
    organization_id: Id


class ImpersonatedOrganizationBody(Struct):
    organization_id: Id


# --- responses -----------------------------------------------------------------------------


class Out(msgspec.Struct, kw_only=True):
    pass


class SignInProviderOut(Out):
    id: str
    name: str


class SignInProvidersOut(Out):
    providers: list[SignInProviderOut]
    signup_open: bool
    email_verification_required: bool


class SignInOut(Out):
    user_id: str
    organization_id: str | None
    role: str | None
    expires_at: datetime | None


class UserOut(Out):
    id: str
    email: str
    name: str
    image_url: str | None
    email_verified: bool
    created_at: datetime | None


class OrganizationOut(Out):
    id: str
    name: str
    slug: str
    logo_url: str | None
    is_personal: bool
    allowed_domains: list[str]
    onboarding_status: str
    created_at: datetime | None
    role: str | None


class OrganizationsOut(Out):
    organizations: list[OrganizationOut]


class DomainSuggestionsOut(Out):
    domains: list[str]


class MeOut(Out):
    user: UserOut
    organization: OrganizationOut | None
    role: str | None
    is_super_admin: bool
    impersonator_user_id: str | None
    credential_kind: str


class AccessTokenOut(Out):
    token: str
    expires_at: datetime | None
    token_type: str = "Bearer"  # noqa: S105 - the scheme name


class MemberOut(Out):
    id: str
    organization_id: str
    user_id: str
    role: str
    email: str
    name: str
    created_at: datetime | None


class MembersOut(Out):
    members: list[MemberOut]


class InvitationOut(Out):
    id: str
    organization_id: str
    email: str
    role: str
    status: str
    inviter_user_id: str | None
    expires_at: datetime | None
    created_at: datetime | None


class InvitationsOut(Out):
    invitations: list[InvitationOut]


class CreatedInvitationOut(Out):
    invitation: InvitationOut
    token: str | None  # only with email delivery disabled: shown once
    link: str | None


class InvitationPreviewOut(Out):
    organization_name: str
    inviter_name: str
    role: str
    masked_email: str
    expires_at: datetime | None


class RepoOut(Out):
    id: str
    name: str


class OnboardingAnswersOut(Out):
    selected_tools: list[str]
    referral_source: str | None
    company_website: str | None
    team_size: str | None


class OnboardingStatusOut(Out):
    organization_id: str
    status: str
    onboarding_complete: bool
    answers: OnboardingAnswersOut
    degraded: bool
    has_github_connection: bool | None
    has_slack_connection: bool | None
    repos: list[RepoOut] | None


class TrialOut(Out):
    status: str
    checkout_url: str | None


class ApiKeyOut(Out):
    id: str
    organization_id: str
    user_id: str
    name: str
    start: str
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime | None


class ApiKeysOut(Out):
    api_keys: list[ApiKeyOut]


class CreatedApiKeyOut(Out):
    api_key: ApiKeyOut
    key: str  # shown once


class ImpersonationOut(Out):
    user_id: str
    organization_id: str
    expires_at: datetime | None


class AdminStatusOut(Out):
    is_super_admin: bool
    impersonation: ImpersonationOut | None


class AdminUsersOut(Out):
    users: list[UserOut]
    next_cursor: str | None


class AdminOrganizationsOut(Out):
    organizations: list[OrganizationOut]
    next_cursor: str | None
