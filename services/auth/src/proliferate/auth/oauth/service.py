"""OAuth sign-in (auth.md §5.3): single-use hashed `state` (10 min) with a PKCE S256 verifier,
code exchange, a primary *verified* email required, then sign in, link or register.

Linking a verified provider email to an unverified password user deletes that password and
revokes its sign-ins: whoever pre-registered the address loses it (no account takeover)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from proliferate.auth import credentials, validation
from proliferate.auth.context import AuthContext
from proliferate.auth.errors import FailedPrecondition, InvalidArgument, Refused, invalid, not_found
from proliferate.auth.models import User
from proliferate.auth.oauth.providers import OAuthIdentity, OAuthProvider, ProviderError
from proliferate.auth.oauth.repository import OAuthStateRepository
from proliferate.auth.sign_in import events as sign_in_events
from proliferate.auth.sign_in.repository import SignInRepository
from proliferate.auth.sign_in.service import ClientMeta, Issued, choose_organization, issue_sign_in
from proliferate.auth.user import events as user_events
from proliferate.auth.user.repository import AccountRepository, UserRepository
from proliferate.auth.user.service import register_user
from sqlalchemy.ext.asyncio import AsyncSession

STATE_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class OAuthSignIn:
    issued: Issued
    redirect_after: str


def oauth_failed(reason: str) -> FailedPrecondition:
    return FailedPrecondition(f"sign-in with the provider failed: {reason}", code="oauth_failed")


def _provider(ctx: AuthContext, provider_id: str) -> OAuthProvider:
    provider = ctx.oauth.get(provider_id)
    if provider is None:
        raise not_found("provider")
    return provider


def callback_url(ctx: AuthContext, provider_id: str) -> str:
    return f"{ctx.settings.public_api_url.rstrip('/')}/v1/auth/oauth/{provider_id}/callback"


def safe_redirect(ctx: AuthContext, value: str) -> str:
    """A relative path, or an URL on APP_URL's origin; anything else is an open redirect."""
    if not value:
        return "/"
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    app, target = urlsplit(ctx.settings.app_url), urlsplit(value)
    if target.scheme in ("http", "https") and (target.scheme, target.netloc) == (app.scheme, app.netloc):
        return value
    raise invalid("redirect", "must be a path or an URL on the app's own origin")


async def begin_oauth(session: AsyncSession, ctx: AuthContext, provider_id: str, redirect_after: str) -> str:
    provider = _provider(ctx, provider_id)
    redirect = safe_redirect(ctx, redirect_after)
    state, verifier = credentials.new_token(), secrets.token_urlsafe(64)
    await OAuthStateRepository(session).insert(
        state_hash=credentials.hash_token(state),
        provider=provider.id,
        code_verifier=verifier,
        redirect_after=redirect,
        expires_at=ctx.clock.now() + STATE_TTL,
    )
    return provider.authorize_url(
        state=state, code_verifier=verifier, redirect_uri=callback_url(ctx, provider.id)
    )


async def complete_oauth(
    session: AsyncSession, ctx: AuthContext, provider_id: str, *, code: str, state: str, client: ClientMeta
) -> OAuthSignIn | Refused:
    provider = ctx.oauth.get(provider_id)
    if provider is None or not code or not state:
        return Refused(oauth_failed("the provider or the answer is not valid"))
    row = await OAuthStateRepository(session).consume(
        credentials.hash_token(state), provider.id, ctx.clock.now()
    )
    if row is None:
        # The consumed state commits with the refusal: a state works once, even when it fails.
        return Refused(oauth_failed("the sign-in attempt is unknown, already used or expired"))
    try:
        access_token = await provider.exchange(
            code=code, code_verifier=row.code_verifier, redirect_uri=callback_url(ctx, provider.id)
        )
        identity = await provider.fetch_identity(access_token)
    except ProviderError as exc:
        return Refused(oauth_failed(str(exc)))
    if identity.email is None:
        return Refused(oauth_failed("the provider account has no verified primary email"))
    user = await _user_for(session, ctx, provider.id, identity)
    if isinstance(user, Refused):
        return user
    org_id, role = await choose_organization(session, user.id)
    return OAuthSignIn(await issue_sign_in(session, ctx, user, org_id, role, client), row.redirect_after)


async def _user_for(
    session: AsyncSession, ctx: AuthContext, provider_id: str, identity: OAuthIdentity
) -> User | Refused:
    now = ctx.clock.now()
    accounts, users = AccountRepository(session), UserRepository(session)
    account = await accounts.get_by_provider(provider_id, identity.provider_account_id)
    if account is not None:
        await accounts.touch(account.id, now)
        user = await users.get(account.user_id)
        assert user is not None
        return user
    assert identity.email is not None
    user = await users.get_by_email(validation.normalize_email(identity.email))
    if user is None:
        registered = await register_user(session, email=identity.email, name=_name(identity), verified_at=now)
        if registered is None:
            return Refused(oauth_failed("an account with this email was created meanwhile; try again"))
        user = registered.user
        if identity.image_url:
            await users.update_profile(user.id, name=user.name, image_url=identity.image_url)
    elif user.email_verified_at is None:
        # Pre-registration defence: the provider proved the mailbox, the password did not.
        await users.mark_verified(user.id, now)
        user_events.user_verified(session, user.id)
        await accounts.delete_password(user.id)
        for sign_in_id in await SignInRepository(session).revoke_all_for_user(user.id, now):
            sign_in_events.sign_in_revoked(session, sign_in_id, user.id)
    linked = await accounts.insert_oauth(
        user.id, provider_id, identity.provider_account_id, identity.login, now
    )
    if linked is None:
        return Refused(oauth_failed("this account is already linked to another identity of that provider"))
    await session.refresh(user)
    return user


def _name(identity: OAuthIdentity) -> str:
    try:
        return validation.clean_name(identity.name)
    except InvalidArgument:
        return validation.clean_name(identity.login or "user")
