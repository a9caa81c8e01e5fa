"""SQLAlchemy models of the auth schema, one module per table, re-exported here."""

from __future__ import annotations

from proliferate.auth.models.account import Account
from proliferate.auth.models.admin_audit_log import AdminAuditLog
from proliferate.auth.models.api_key import ApiKey
from proliferate.auth.models.base import Base
from proliferate.auth.models.email_verification import EmailVerification
from proliferate.auth.models.invitation import Invitation
from proliferate.auth.models.member import Member
from proliferate.auth.models.oauth_state import OAuthState
from proliferate.auth.models.organization import Organization
from proliferate.auth.models.password_reset import PasswordReset
from proliferate.auth.models.rate_limit_bucket import RateLimitBucket
from proliferate.auth.models.recorded_mail import RecordedMail
from proliferate.auth.models.sign_in import SignIn
from proliferate.auth.models.user import User

__all__ = [
    "Account",
    "AdminAuditLog",
    "ApiKey",
    "Base",
    "EmailVerification",
    "Invitation",
    "Member",
    "OAuthState",
    "Organization",
    "PasswordReset",
    "RateLimitBucket",
    "RecordedMail",
    "SignIn",
    "User",
]
