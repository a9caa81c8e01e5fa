"""Composition root of the auth service: its settings and how its parts are assembled.

Tests assemble the same service with their own clock, mailer, OAuth providers or peers:
`definition(clock=FrozenClock(...), peers=FakePeers())`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec
from proliferate.auth import grpc_server, worker
from proliferate.auth.clock import Clock, SystemClock
from proliferate.auth.context import AuthContext
from proliferate.auth.mail.mailer import DisabledMailer, Mailer, RecordingMailer, ResendMailer, SmtpMailer
from proliferate.auth.oauth.providers import GitHubProvider, OAuthProvider
from proliferate.auth.onboarding.peers import GrpcPeers, Peers
from proliferate.auth.sign_in.passwords import PasswordHasher
from proliferate.auth.token.signing import SigningKeyError, SigningKeys
from proliferate.kit.logs import get_logger
from proliferate.kit.runtime import Runtime, ServiceDefinition, ServiceParts, run_main
from proliferate.kit.settings import AnySecret, Port, ServiceSettings, exit_with_line

log = get_logger("proliferate.auth.bootstrap")


class Settings(ServiceSettings, frozen=True, kw_only=True):
    """The auth service's environment (besides what every service reads)."""

    app_url: str = "http://localhost:3000"  # the product UI: links in mails, OAuth redirects
    public_api_url: str = "http://127.0.0.1:8080"  # the gateway as browsers reach it (OAuth callback)
    # [{"kid", "private_key": Ed25519 PEM}]; required in production, generated per process otherwise.
    auth_signing_keys: AnySecret | None = None
    super_admin_emails: str = ""  # comma-separated; only verified addresses count
    allowed_signup_emails: str = ""  # comma-separated; set = sign-up by invitation or listing only
    require_email_verification: bool = False
    mailer: Literal["record", "smtp", "resend", "disabled"] | None = (
        None  # default: record, disabled in production
    )
    mail_from: str = "Proliferate <no-reply@proliferate.local>"
    smtp_host: str = "localhost"
    smtp_port: Port = 587
    smtp_username: str | None = None
    smtp_password: AnySecret | None = None
    smtp_starttls: bool = True
    resend_api_key: AnySecret | None = None
    github_client_id: str | None = None
    github_client_secret: AnySecret | None = None
    github_oauth_url: str = "https://github.com"
    github_api_url: str = "https://api.github.com"
    password_hash_time_cost: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    password_hash_memory_kib: Annotated[int, msgspec.Meta(ge=8192, le=1048576)] = 65536
    password_hash_parallelism: Annotated[int, msgspec.Meta(ge=1, le=16)] = 4
    dev_sign_in_token: AnySecret | None = None  # seed-dev: keep the printed token stable across runs


@dataclass(frozen=True)
class Overrides:
    clock: Clock | None = None
    mailer: Mailer | None = None
    peers: Peers | None = None
    oauth: Mapping[str, OAuthProvider] | None = None
    passwords: PasswordHasher | None = None


def signing_keys(settings: Settings) -> SigningKeys:
    if settings.auth_signing_keys:
        try:
            return SigningKeys.from_setting(settings.auth_signing_keys)
        except SigningKeyError as exc:
            exit_with_line(f"auth: setting AUTH_SIGNING_KEYS is invalid: {exc}")
    if settings.proliferate_env == "production":
        exit_with_line("auth: setting AUTH_SIGNING_KEYS is missing")
    # Outside production a key per process is enough for one replica; say so.
    log.warning("auth_signing_keys_generated", reason="AUTH_SIGNING_KEYS is not set")
    return SigningKeys.from_setting(SigningKeys.generate_setting())


def mailer_for(settings: Settings, runtime: Runtime[Settings]) -> Mailer:
    kind = settings.mailer or ("disabled" if settings.proliferate_env == "production" else "record")
    if kind == "record":
        return RecordingMailer(runtime.db)
    if kind == "smtp":
        return SmtpMailer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.mail_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    if kind == "resend":
        if not settings.resend_api_key:
            exit_with_line("auth: setting RESEND_API_KEY is missing (MAILER=resend)")
        return ResendMailer(api_key=settings.resend_api_key, sender=settings.mail_from)
    return DisabledMailer()


def oauth_providers(settings: Settings) -> dict[str, OAuthProvider]:
    providers: dict[str, OAuthProvider] = {}
    if settings.github_client_id and settings.github_client_secret:
        providers["github"] = GitHubProvider(
            settings.github_client_id,
            settings.github_client_secret,
            oauth_url=settings.github_oauth_url,
            api_url=settings.github_api_url,
        )
    return providers


def build_context(runtime: Runtime[Settings], overrides: Overrides = Overrides()) -> AuthContext:
    settings = runtime.settings
    return AuthContext(
        db=runtime.db,
        settings=settings,
        clock=overrides.clock or SystemClock(),
        passwords=overrides.passwords
        or PasswordHasher(
            time_cost=settings.password_hash_time_cost,
            memory_kib=settings.password_hash_memory_kib,
            parallelism=settings.password_hash_parallelism,
        ),
        signing=signing_keys(settings),
        mailer=overrides.mailer or mailer_for(settings, runtime),
        peers=overrides.peers or GrpcPeers(runtime.clients),
        oauth=overrides.oauth if overrides.oauth is not None else oauth_providers(settings),
    )


def definition(**overrides: object) -> ServiceDefinition[Settings]:
    chosen = Overrides(**overrides)  # type: ignore[arg-type]

    async def assemble(runtime: Runtime[Settings]) -> ServiceParts:
        ctx = build_context(runtime, chosen)
        return ServiceParts(
            register_grpc=grpc_server.registrar(ctx), consumers=worker.consumers(ctx), jobs=worker.jobs(ctx)
        )

    return ServiceDefinition(name="auth", settings_type=Settings, assemble=assemble)


DEFINITION = definition()


def main() -> None:
    run_main(DEFINITION)
