"""What the auth domain services are given: the composition root builds one `AuthContext`
per process (bootstrap.py); tests build it with their own clock, mailer, providers, peers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from proliferate.auth import validation
from proliferate.auth.clock import Clock
from proliferate.auth.mail.mailer import Mailer
from proliferate.auth.models import User
from proliferate.auth.oauth.providers import OAuthProvider
from proliferate.auth.onboarding.peers import Peers
from proliferate.auth.sign_in.passwords import PasswordHasher
from proliferate.auth.token.signing import SigningKeys
from proliferate.kit.db import Database

if TYPE_CHECKING:
    from proliferate.auth.bootstrap import Settings


@dataclass(frozen=True)
class AuthContext:
    db: Database
    settings: Settings
    clock: Clock
    passwords: PasswordHasher
    signing: SigningKeys
    mailer: Mailer
    peers: Peers
    oauth: Mapping[str, OAuthProvider] = field(default_factory=dict)

    @property
    def super_admin_emails(self) -> frozenset[str]:
        return _email_set(self.settings.super_admin_emails)

    @property
    def allowed_signup_emails(self) -> frozenset[str]:
        return _email_set(self.settings.allowed_signup_emails)

    @property
    def require_email_verification(self) -> bool:
        return self.settings.require_email_verification and self.mailer.enabled

    def is_super_admin(self, user: User) -> bool:
        """A listed email that is verified (auth.md §5.11): never a configured but unproven address."""
        return user.email_verified_at is not None and user.email_normalized in self.super_admin_emails

    def app_link(self, path: str) -> str:
        return f"{self.settings.app_url.rstrip('/')}/{path.lstrip('/')}"


def _email_set(value: str) -> frozenset[str]:
    return frozenset(validation.normalize_email(e) for e in value.split(",") if e.strip())
